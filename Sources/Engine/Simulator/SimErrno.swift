import GmemCore

/// The simulator's name for the errno table (`Errno`), kept so its rules read as before.
typealias SimErrno = Errno

extension KernelError {
    /// A failure raised inside the simulator; `SimulatedKernel` fills in the call name and its arguments.
    static func simulated(_ errno: Errno, errorOffset: UInt64? = nil) -> KernelError {
        KernelError(call: "", errno: errno, errorOffset: errorOffset)
    }

    static var simulatedSigbus: KernelError { KernelError(call: "", failure: .sigbus) }
}

/// Small arithmetic used by every rule: page rounding and overflow-checked ends.
enum SimMath {
    /// x86-64 `TASK_SIZE_MAX` with 4-level paging: the first address that is not a user address.
    static let taskSizeMax: UInt64 = 0x7fff_ffff_f000

    static func isAligned(_ value: UInt64, _ alignment: UInt64) -> Bool { value % alignment == 0 }

    /// `value` rounded up to `alignment`, or nil on overflow.
    static func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64? {
        let remainder = value % alignment
        if remainder == 0 { return value }
        let (result, overflow) = value.addingReportingOverflow(alignment - remainder)
        return overflow ? nil : result
    }

    static func roundDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 { value - value % alignment }

    /// `start + length`, or nil when it wraps.
    static func end(_ start: UInt64, _ length: UInt64) -> UInt64? {
        let (result, overflow) = start.addingReportingOverflow(length)
        return overflow ? nil : result
    }

    /// Bytes covered by the runs of `map` inside `range`.
    static func coveredBytes<Value>(_ map: IntervalMap<Value>, in range: Range<UInt64>) -> UInt64 {
        var total: UInt64 = 0
        map.forEachRun(in: range) { total += $0.range.byteCount }
        return total
    }
}
