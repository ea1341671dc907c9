import GmemConformance
import GmemCore
import GmemKVM
import GmemSimulator
import Testing

extension KVMIntegration {
    /// The differential cases of the conformance catalogue on the real kernel and on the simulator of this
    /// machine's profile (`linux-6.18-pvm`): every step must end the same way (success and its value, errno
    /// or SIGBUS) and so must the end state (residency of each mapping), and every documented outcome must be
    /// what the kernel did. A failing case prints its step table.
    @Suite struct Differential {
        static let profile = Profiles.linux618PVM
        static let cases = DifferentialCases.all.filter { $0.profiles.contains(profile.name) }

        static func target() throws -> ConformanceTarget {
            let kernel = try KVMKernel()
            let capabilities = try CapabilityProbe.probe(kernel, hugepageDirectory: HugepagePools.defaultDirectory)
            return ConformanceTarget(
                label: "kvm", kernel: kernel, deviceFd: kernel.systemFd, capabilities: capabilities)
        }

        @Test func thereAreEnoughCases() {
            #expect(DifferentialCases.all.count == 41)
            #expect(
                Self.cases.count == DifferentialCases.all.count,
                "every differential case applies to this machine's profile")
            #expect(Set(ConformanceCatalog.all.map(\.id)).count == ConformanceCatalog.all.count, "case ids are unique")
        }

        @Test(arguments: cases)
        func kernelAndSimulatorAgree(_ testCase: ConformanceCase) throws {
            let target = try Self.target()
            let matches = ProfileDeviation.between(host: target.capabilities, profile: Self.profile).isEmpty
            let result = ConformanceSuite.run(
                testCase, on: target, reference: ConformanceSuite.reference(Self.profile, host: target.capabilities),
                hostMatchesProfile: matches)
            let table = ConformanceSuite.table(id: testCase.id, steps: result.steps)
            if case .skip(let reason) = result.status {
                // A case skips only for what the host lacks, and names it: a VM type, guest_memfd, a huge
                // page, the profile's capability values.
                #expect(
                    (reason.hasPrefix("VM type ") && reason.hasSuffix(" absent"))
                        || reason.hasPrefix("guest_memfd absent") || reason.contains("pool")
                        || reason.contains("capability values"),
                    "\(testCase.id) skipped: \(reason)")
                return
            }
            #expect(result.steps.allSatisfy { $0.matchesSimulator }, "kernel and simulator differ:\n\(table)")
            #expect(result.steps.allSatisfy { $0.meetsRule }, "the kernel differs from the documented rule:\n\(table)")
        }

        /// The runner must leave no fd or mapping of the real kernel behind.
        @Test func casesReleaseEverything() throws {
            let target = try Self.target()
            let reference = ConformanceSuite.reference(Self.profile, host: target.capabilities)
            let before = try openKVMRelatedFds()
            for testCase in Self.cases.prefix(12) {
                _ = ConformanceSuite.run(testCase, on: target, reference: reference)
            }
            #expect(try openKVMRelatedFds() == before)
        }
    }
}
