import Foundation
import ProcessSupport
import Testing

/// The tests themselves: they wait on conditions, not on time (Tests/ProcessSupport/Wait.swift is the one
/// place that pauses), and a test that cannot run says so as a skip (`.enabled(if:)`), not with a print.
@Suite struct TestHygieneTests {
    /// Calls that pause a test for a fixed time, and the old way of reporting a skip. Spelled in pieces so
    /// that this file does not match itself.
    static let forbidden = [
        "Thread." + "sleep", "usleep" + "(", "nanosleep" + "(", "Task." + "sleep", " sleep" + "(",
        "print(\"" + "skip",
    ]

    @Test func noTestSleepsOrPrintsASkip() throws {
        let tests = GmemctlBinary.repositoryRoot.appendingPathComponent("Tests")
        let files = try #require(FileManager.default.enumerator(atPath: tests.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") && $0 != "ProcessSupport/Wait.swift" }
        #expect(files.count > 20, "the scan found the tests: \(files.count) files")
        for file in files {
            let text = try String(contentsOf: tests.appendingPathComponent(file), encoding: .utf8)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for (number, line) in lines.enumerated() {
                for call in Self.forbidden where line.contains(call) {
                    let name = call.trimmingCharacters(in: .whitespaces)
                    Issue.record("Tests/\(file):\(number + 1) uses \(name): \(line)")
                }
            }
        }
    }
}
