import Foundation

/// Waiting on conditions, never on time: each wait names what it waits for and gives up at a deadline.
public enum Wait {
    /// Checks `condition` until it holds or `seconds` pass; returns whether it held. Between checks the
    /// thread pauses briefly: the pause bounds how often the condition is read, it orders nothing.
    public static func until(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        let pause = DispatchSemaphore(value: 0)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            _ = pause.wait(timeout: .now() + .milliseconds(5))
        }
    }
}

extension Process {
    /// Waits until the process ends or `seconds` pass; returns whether it ended.
    public func waitForExit(within seconds: Double) -> Bool {
        Wait.until(seconds) { !isRunning }
    }
}
