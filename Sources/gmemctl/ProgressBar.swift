import Config

#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, for populating large memory: only on a terminal, only for 1 GiB or
/// more, so pipes, logs and JSON output never see it.
enum ProgressBar {
    static let threshold: UInt64 = 1 << 30

    static func forPopulate() -> (@Sendable (String, UInt64, UInt64) -> Void)? {
        guard isatty(STDERR_FILENO) == 1 else { return nil }
        return { block, done, total in
            guard total >= threshold else { return }
            let width = 30
            let filled = Int(Double(width) * Double(done) / Double(total))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            // Carriage return, then erase to the end of the line: a shorter redraw leaves nothing of a longer one.
            var line = "\r\u{1B}[K" + "populating \(block) [\(bar)] \(formatSize(done)) / \(formatSize(total))"
            if done == total { line += "\n" }
            var stderr = StandardError()
            print(line, terminator: "", to: &stderr)
        }
    }
}
