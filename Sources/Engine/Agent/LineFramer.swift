import GmemCore
import GmemProtocol
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// What the framer hands on: a complete line, or the news that a line was too long and was skipped.
public enum FramedLine: Sendable, Equatable {
    case line(ByteBuffer)
    case tooLong(bytes: Int)
}

/// Splits a byte stream into newline-terminated lines. A line longer than `maxLength` is not buffered: its
/// bytes are dropped as they arrive until the next newline, and one `.tooLong` is emitted for it, so a
/// client sending a 100 MB line costs the agent no more memory than `maxLength`.
public struct LineFramer: ByteToMessageDecoder {
    public typealias InboundOut = FramedLine

    private let maxLength: Int
    /// Bytes of the current over-long line dropped so far (nil while not discarding).
    private var discarded: Int?
    /// Bytes at the front of the buffer already searched for a newline: each byte is looked at once,
    /// however many reads a long line takes to arrive.
    private var searched = 0

    public init(maxLength: Int = AgentProtocol.maxLineBytes) {
        self.maxLength = maxLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let newline = findNewline(in: buffer)
        if let skipped = discarded {
            guard let newline else {
                discarded = skipped + buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                return .needMoreData
            }
            let length = newline - buffer.readerIndex
            buffer.moveReaderIndex(forwardBy: length + 1)
            discarded = nil
            context.fireChannelRead(wrapInboundOut(.tooLong(bytes: skipped + length)))
            return .continue
        }
        guard let newline else {
            if buffer.readableBytes > maxLength {
                discarded = buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                searched = 0
            } else {
                searched = buffer.readableBytes
            }
            return .needMoreData
        }
        let length = newline - buffer.readerIndex
        if length > maxLength {
            buffer.moveReaderIndex(forwardBy: length + 1)
            context.fireChannelRead(wrapInboundOut(.tooLong(bytes: length)))
            return .continue
        }
        guard let line = buffer.readSlice(length: length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(wrapInboundOut(.line(line)))
        return .continue
    }

    /// The absolute index of the next newline at or after the unsearched part; resets the search mark
    /// when one is found (the caller consumes through it).
    private mutating func findNewline(in buffer: ByteBuffer) -> Int? {
        let start = min(searched, buffer.readableBytes)
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard start < bytes.count, let base = bytes.baseAddress,
                let hit = memchr(base + start, 0x0A, bytes.count - start)
            else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let found else { return nil }
        searched = 0
        return buffer.readerIndex + found
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool
    ) throws -> DecodingState {
        // A truncated last request (no newline before EOF) gets no answer: nobody is left to read it.
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
