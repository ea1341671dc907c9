import Foundation

/// The formats a conformance run is reported in: KTAP (as the kernel's own tests print it), JUnit XML, JSON
/// and a human summary. When the host deviates from the profile it is checked against, the deviations are a
/// failing entry of their own (`profile/NAME`), so tools that read only results see the regression.
public enum ConformanceReport {
    public static let formatVersion = "1.0"

    /// The entry of a pinned profile (it fails when the host deviates); nil when the profile is the host's own.
    static func profileEntry(_ run: ConformanceRun) -> (name: String, deviations: [String])? {
        run.profilePinned ? ("profile/\(run.profile)", run.deviations) : nil
    }

    /// Deviations from an unpinned profile: the host matches none, and this is the nearest.
    static func notes(_ run: ConformanceRun) -> [String] {
        guard !run.profilePinned, !run.deviations.isEmpty else { return [] }
        return [
            "the host matches no built-in profile; checked against the nearest, \(run.profile), which it deviates from:"
        ]
            + run.deviations.map { "  \($0)" }
    }

    static func failureLines(_ failure: CaseFailure) -> [String] {
        var lines = [failure.summary]
        if failure.otherDeviations > 0 { lines.append("\(failure.otherDeviations) more step(s) deviate") }
        return lines
    }

    // MARK: - KTAP version 1

    public static func ktap(_ run: ConformanceRun) -> String {
        let profile = profileEntry(run)
        var lines =
            [
                "KTAP version 1", "1..\(run.results.count + (profile == nil ? 0 : 1))",
                "# gmemctl conformance: host \(run.host), profile \(run.profile)",
            ] + notes(run).map { "# \($0)" }
        var number = 0
        if let profile {
            number += 1
            lines += profile.deviations.map { "# deviation: \($0)" }
            lines.append((profile.deviations.isEmpty ? "ok" : "not ok") + " \(number) \(profile.name)")
        }
        for result in run.results {
            number += 1
            switch result.status {
            case .ok:
                lines.append("ok \(number) \(result.testCase.id)")
            case .skip(let reason):
                lines.append("ok \(number) \(result.testCase.id) # SKIP \(reason)")
            case .notOK(let failure):
                lines += failureLines(failure).map { "# \($0)" }
                lines.append("not ok \(number) \(result.testCase.id)")
            }
        }
        let profileFailed = profile.map { $0.deviations.isEmpty ? 0 : 1 } ?? 0
        lines.append(
            "# Totals: pass:\(run.passed + (profile == nil ? 0 : 1 - profileFailed)) fail:\(run.failed + profileFailed) skip:\(run.skipped)"
        )
        return lines.joined(separator: "\n")
    }

    // MARK: - JUnit XML

    static func xml(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&apos;"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func seconds(_ value: Double) -> String { String(format: "%.3f", value) }

    public static func junit(_ run: ConformanceRun) -> String {
        let profile = profileEntry(run)
        let failures = run.failed + (profile.map { $0.deviations.isEmpty ? 0 : 1 } ?? 0)
        let tests = run.results.count + (profile == nil ? 0 : 1)
        let time = seconds(run.results.reduce(0) { $0 + $1.seconds })
        var lines =
            [
                #"<?xml version="1.0" encoding="UTF-8"?>"#,
                #"<testsuites name="gmemctl conformance" tests="\#(tests)" failures="\#(failures)" errors="0" skipped="\#(run.skipped)" time="\#(time)">"#,
                #"  <testsuite name="\#(xml("\(run.host) against \(run.profile)"))" tests="\#(tests)" failures="\#(failures)" errors="0" skipped="\#(run.skipped)" time="\#(time)">"#,
                "    <properties>",
                #"      <property name="host" value="\#(xml(run.host))"/>"#,
                #"      <property name="profile" value="\#(xml(run.profile))"/>"#,
            ] + run.deviations.map { #"      <property name="deviation" value="\#(xml($0))"/>"# } + [
                "    </properties>"
            ]
        if let profile {
            lines.append(#"    <testcase classname="profile" name="\#(xml(profile.name))" time="0.000">"#)
            if !profile.deviations.isEmpty {
                let message = "the host deviates from \(run.profile) in \(profile.deviations.count) way(s)"
                lines.append(
                    #"      <failure type="deviation" message="\#(xml(message))">\#(xml(profile.deviations.joined(separator: "\n")))</failure>"#
                )
            }
            lines.append("    </testcase>")
        }
        for result in run.results {
            let family = result.testCase.source.family
            lines.append(
                #"    <testcase classname="\#(xml(family))" name="\#(xml(result.testCase.id))" time="\#(seconds(result.seconds))">"#
            )
            switch result.status {
            case .ok:
                break
            case .skip(let reason):
                lines.append(#"      <skipped message="\#(xml(reason))"/>"#)
            case .notOK(let failure):
                let body = (failureLines(failure) + ["", ConformanceSuite.table(result)]).joined(separator: "\n")
                lines.append(
                    #"      <failure type="\#(failure.kind.rawValue)" message="\#(xml(failure.summary))">\#(xml(body))</failure>"#
                )
            }
            lines.append("    </testcase>")
        }
        lines += ["  </testsuite>", "</testsuites>"]
        return lines.joined(separator: "\n")
    }

    // MARK: - JSON

    struct JSONFailure: Encodable {
        var kind: String
        var step: Int
        var call: String
        var expected: String
        var observed: String
        var otherDeviations: Int
    }

    struct JSONCase: Encodable {
        var id: String
        var rule: String
        var source: String
        var sourceFamily: String
        var status: String
        var reason: String?
        var failure: JSONFailure?
        var steps: Int
        var seconds: Double
    }

    struct JSONSummary: Encodable {
        var total: Int
        var passed: Int
        var failed: Int
        var skipped: Int
    }

    struct JSONRun: Encodable {
        var formatVersion = ConformanceReport.formatVersion
        var host: String
        var profile: String
        var profileMatchesHost: Bool
        var profilePinned: Bool
        var deviations: [String]
        var succeeded: Bool
        var summary: JSONSummary
        var cases: [JSONCase]
    }

    public static func json(_ run: ConformanceRun) throws -> String {
        let cases = run.results.map { result -> JSONCase in
            var status = "ok", reason: String?, failure: JSONFailure?
            switch result.status {
            case .ok: break
            case .skip(let why):
                status = "skip"
                reason = why
            case .notOK(let broken):
                status = "not ok"
                failure = JSONFailure(
                    kind: broken.kind.rawValue, step: broken.step, call: broken.label,
                    expected: broken.expected.description, observed: broken.observed.description,
                    otherDeviations: broken.otherDeviations)
            }
            return JSONCase(
                id: result.testCase.id, rule: result.testCase.rule, source: result.testCase.source.description,
                sourceFamily: result.testCase.source.family, status: status, reason: reason, failure: failure,
                steps: result.testCase.steps.count, seconds: (result.seconds * 1000).rounded() / 1000)
        }
        let document = JSONRun(
            host: run.host, profile: run.profile, profileMatchesHost: run.profileMatchesHost,
            profilePinned: run.profilePinned, deviations: run.deviations, succeeded: run.succeeded,
            summary: JSONSummary(
                total: run.results.count, passed: run.passed, failed: run.failed,
                skipped: run.skipped),
            cases: cases)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    // MARK: - Human

    public static func human(_ run: ConformanceRun) -> String {
        var lines = ["conformance of \(run.host) against \(run.profile)"] + notes(run)
        if !run.deviations.isEmpty, run.profilePinned {
            lines.append("the host deviates from \(run.profile):")
            lines += run.deviations.map { "  - \($0)" }
        }
        for result in run.results {
            switch result.status {
            case .ok: lines.append("ok      \(result.testCase.id)")
            case .skip(let reason): lines.append("skip    \(result.testCase.id): \(reason)")
            case .notOK(let failure):
                lines.append("not ok  \(result.testCase.id)")
                lines += failureLines(failure).map { "        \($0)" }
            }
        }
        let seconds = run.results.reduce(0) { $0 + $1.seconds }
        lines.append(
            "\(run.results.count) cases: \(run.passed) ok, \(run.failed) not ok, \(run.skipped) skipped"
                + (run.deviations.isEmpty || !run.profilePinned
                    ? "" : ", \(run.deviations.count) deviation(s) from the profile")
                + String(format: " (%.1f s)", seconds))
        return lines.joined(separator: "\n")
    }
}
