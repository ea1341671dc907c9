import Foundation
import GmemConformance
import GmemCore
import GmemKVM
import GmemSimulator
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// `gmemctl conformance`: the catalogue, the runs on the simulator and on /dev/kvm, the report formats.
@Suite struct ConformanceCatalogue {
    @Test func everyCaseHasAnIdARuleASourceAndProfiles() {
        for testCase in ConformanceCatalog.all {
            #expect(!testCase.rule.isEmpty && !testCase.profiles.isEmpty, "\(testCase.id)")
            #expect(!testCase.id.contains("#") && !testCase.id.contains(" "), "\(testCase.id) is not KTAP-safe")
            #expect(testCase.profiles.isSubset(of: Set(Profiles.names)), "\(testCase.id) names an unknown profile")
        }
    }

    /// Each of the selftest's 18 cases is either ported (a case named after it) or listed as not modelled.
    @Test func theSelftestIsPortedCaseByCase() {
        let ported = Set(
            SelftestCases.all.compactMap { testCase -> String? in
                if case .selftest(_, let name) = testCase.source { return name } else { return nil }
            })
        let notModelled = Set(SelftestCases.notModelled.map(\.testCase))
        #expect(ported.isDisjoint(with: notModelled))
        #expect(ported.count + notModelled.count == 19, "18 selftest cases plus the test_guest_memfd driver")
        for name in [
            "test_guest_memfd_flags", "test_create_guest_memfd_multiple", "test_create_guest_memfd_invalid_sizes",
            "test_mmap_supported", "test_fault_overflow", "test_fault_private", "test_mmap_cow",
            "test_mmap_not_supported", "test_fallocate", "test_invalid_punch_hole", "test_collapse",
        ] {
            #expect(ported.contains(name), "\(name) is ported")
        }
    }

    /// A case for a VM type the host lacks names the VM type even where guest_memfd is missing too (this
    /// machine's kernel: default VMs only, no guest_memfd); a guest_memfd case for a present VM type names
    /// guest_memfd.
    @Test func aSkipNamesTheMissingVMTypeBeforeTheMissingGuestMemfd() throws {
        var host = Profiles.linux618PVM
        host.systemExtensions[KVMConstants.capGuestMemfd] = 0
        host.vmTypes = host.vmTypes.filter { $0.vmType == .default }.map {
            var type = $0
            type.guestMemfd = false
            return type
        }
        let createsGmem = ConformanceCatalog.all.filter { testCase in
            testCase.steps.contains { if case .expect(.createGmem, _) = $0 { return true } else { return false } }
        }
        let swProtected = try #require(
            createsGmem.first { $0.requirements.contains(.vmType(.swProtected)) }, "a sw-protected gmem case")
        #expect(swProtected.skipReason(on: host) == "VM type sw-protected absent")
        let onDefault = try #require(createsGmem.first { $0.requirements.isEmpty }, "a gmem case on any VM")
        #expect(onDefault.skipReason(on: host) == "guest_memfd absent (KVM_CAP_GUEST_MEMFD is 0)")
    }

    /// The simulator of every profile passes every case that applies to it: the simulator agrees with the
    /// selftest's expectations, the uapi rules and the in-place series rules.
    @Test(arguments: Profiles.names)
    func theSimulatorOfEachProfilePassesItsCases(_ profile: String) throws {
        let opened = try ConformanceSuite.open(host: "sim:\(profile)", profile: nil)
        let run = ConformanceSuite.run(
            ConformanceCatalog.cases(for: profile), on: opened.target, profile: opened.profile,
            pinned: opened.pinned)
        for result in run.results {
            if case .notOK = result.status { Issue.record("\(ConformanceSuite.table(result))") }
        }
        #expect(run.succeeded)
        #expect(run.deviations.isEmpty)
    }

    @Test func simPVMInKTAPListsEveryCaseOkOrSkip() throws {
        let run = try Self.run(host: "sim:linux-6.18-pvm")
        let ktap = ConformanceReport.ktap(run)
        let lines = ktap.split(separator: "\n").map(String.init)
        #expect(lines.first == "KTAP version 1")
        #expect(lines[1] == "1..\(run.results.count)")
        let results = lines.filter { $0.hasPrefix("ok ") || $0.hasPrefix("not ok ") }
        #expect(results.count == run.results.count)
        #expect(!results.contains { $0.hasPrefix("not ok") })
        #expect(results.first == "ok 1 \(run.results[0].testCase.id)")
        #expect(run.succeeded)
    }

    /// Against another generation's profile the host's deviations are named and the run fails.
    @Test func anotherProfileReportsTheDeviations() throws {
        let run = try Self.run(host: "sim:linux-6.18-pvm", profile: "linux-6.18")
        #expect(run.deviations.contains("VM type sw-protected absent"))
        #expect(run.deviations.contains("KVM_CAP_MEMORY_ATTRIBUTES (233) at system scope: profile 8, host 0"))
        #expect(!run.succeeded)
        #expect(run.results.contains { $0.status == .skip("VM type sw-protected absent") })
        let ktap = ConformanceReport.ktap(run)
        #expect(ktap.contains("\n# deviation: VM type sw-protected absent\n"))
        #expect(ktap.contains("\nnot ok 1 profile/linux-6.18\n"))
    }

    @Test func junitParsesWithTheRightCounts() throws {
        let run = try Self.run(host: "sim:linux-6.18-pvm", profile: "linux-6.18")
        let document = try XMLDocument(xmlString: ConformanceReport.junit(run))
        let suite = try #require(try document.nodes(forXPath: "/testsuites/testsuite").first as? XMLElement)
        let cases = try document.nodes(forXPath: "//testcase")
        #expect(cases.count == run.results.count + 1)
        #expect(suite.attribute(forName: "tests")?.stringValue == String(run.results.count + 1))
        #expect(try document.nodes(forXPath: "//testcase/skipped").count == run.skipped)
        #expect(suite.attribute(forName: "skipped")?.stringValue == String(run.skipped))
        #expect(try document.nodes(forXPath: "//testcase/failure").count == run.failed + 1)
        #expect(suite.attribute(forName: "failures")?.stringValue == String(run.failed + 1))
        #expect(run.skipped > 0)
    }

    /// A case with a wrong expected errno fails in every format with its step, expected and observed values.
    @Test func aFailingCaseShowsStepExpectedAndObserved() throws {
        let wrong = ConformanceCase(
            id: "test/wrong-errno", rule: "a guest_memfd of 4095 bytes is ENOTTY (deliberately wrong: it is EINVAL)",
            source: .kernel(file: "virt/kvm/guest_memfd.c", function: "kvm_gmem_create"), profiles: ["linux-6.18-pvm"],
            steps: [
                .createVM(0, type: 0).expecting(.ok),
                .createGmem(0, vm: .vm(0), size: 4095, flags: 0).expecting(.enotty),
            ])
        let opened = try ConformanceSuite.open(host: "sim:linux-6.18-pvm", profile: nil)
        let run = ConformanceSuite.run([wrong], on: opened.target, profile: opened.profile, pinned: false)
        #expect(!run.succeeded)
        let summary = "step 2 file0 = CREATE_GUEST_MEMFD(vm0, size 0xfff, flags 0x0): expected ENOTTY, observed EINVAL"
        guard case .notOK(let broken) = run.results.first?.status else {
            Issue.record("the wrong case did not fail")
            return
        }
        #expect(broken.kind == .rule && broken.step == 2 && broken.expected == .enotty && broken.observed == .einval)
        #expect(broken.summary == summary)
        #expect(ConformanceReport.ktap(run).contains("# \(summary)\nnot ok 1 test/wrong-errno"))
        #expect(ConformanceReport.human(run).contains("not ok  test/wrong-errno\n        \(summary)"))
        let junit = try XMLDocument(xmlString: ConformanceReport.junit(run))
        let failure = try #require(try junit.nodes(forXPath: "//testcase/failure").first as? XMLElement)
        #expect(failure.attribute(forName: "message")?.stringValue == summary)
        let json = try JSONSerialization.jsonObject(with: Data(try ConformanceReport.json(run).utf8)) as? [String: Any]
        #expect(json?["formatVersion"] as? String == "1.0")
        let first = (json?["cases"] as? [[String: Any]])?.first
        let jsonFailure = first?["failure"] as? [String: Any]
        #expect(first?["status"] as? String == "not ok")
        #expect(jsonFailure?["step"] as? Int == 2)
        #expect(jsonFailure?["expected"] as? String == "ENOTTY")
        #expect(jsonFailure?["observed"] as? String == "EINVAL")
    }

    /// Cases are chosen by what a profile is: an alias names the same kernel as its target, so both run the
    /// same cases, and those include the selftest port and the in-place series rules.
    @Test(arguments: Profiles.aliases.map { [$0.alias, $0.profile] })
    func aProfileAndItsAliasRunTheSameCases(_ names: [String]) throws {
        let runs = try names.map { try Self.run(host: "sim:\($0)") }
        let ids = runs.map { $0.results.map(\.testCase.id) }
        #expect(ids[0] == ids[1], "\(names[0]) and \(names[1]) differ")
        for (name, run) in zip(names, runs) {
            #expect(run.results.contains { $0.testCase.id.hasPrefix("in-place/") }, "\(name) runs no in-place/* case")
            #expect(run.results.contains { $0.testCase.id.hasPrefix("selftest/") }, "\(name) runs no selftest case")
            #expect(
                run.results.allSatisfy { $0.status == .ok },
                "\(name): \(run.results.filter { $0.status != .ok }.map(\.testCase.id))")
            #expect(run.succeeded)
        }
    }

    /// A real kernel in in-place mode probes as a `linux-7.4-in-place*` profile: each of them gets the series
    /// rules for every VM type it converts in place.
    @Test func everyInPlaceProfileGetsTheSeriesRules() {
        for profile in Profiles.all where profile.inPlaceMode {
            let ids = Set(ConformanceCatalog.cases(for: profile.name, matching: "in-place/*").map(\.id))
            let types = profile.vmTypes.filter { $0.conversion == .gmemAttributes2 }.map(\.vmType.rawValue)
            #expect(!types.isEmpty)
            for type in types {
                #expect(ids.contains("in-place/attributes2-arguments/\(type)"), "\(profile.name): \(ids.sorted())")
            }
            #expect(ids.count == 4 * types.count, "\(profile.name): \(ids.sorted())")
        }
        for profile in Profiles.all where !profile.inPlaceMode {
            #expect(ConformanceCatalog.cases(for: profile.name, matching: "in-place/*").isEmpty, "\(profile.name)")
        }
    }

    /// This development host (6.18 PVM) without guest_memfd deviates from linux-6.8 and linux-6.18-pvm in four
    /// ways each; its kernel release picks the 6.18 one (the first in the list used to win).
    @Test func aTieIsBrokenByTheKernelRelease() throws {
        let types = [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none)
        ]
        let host = Capabilities(
            name: "kvm", summary: "a 6.18 PVM host without guest_memfd", guestMemfdFlagSet: .none, vmTypes: types,
            systemExtensions: [
                KVMConstants.capUserMemory2: 1, KVMConstants.capMemoryFaultInfo: 1, KVMConstants.capMemoryAttributes: 0,
                KVMConstants.capGuestMemfd: 0, KVMConstants.capVMTypes: 1, KVMConstants.capPreFaultMemory: 0,
                KVMConstants.capGuestMemfdFlags: 0, KVMConstants.capNrMemslots: 32764,
            ],
            hugePageSizes: [2 << 20], preFault: false)
        for (release, expected) in [("6.18.44-fc-v1272", "linux-6.18-pvm"), ("6.8.0-45-generic", "linux-6.8")] {
            let probed = try CapabilityProbe.probe(
                SimulatedKernel(capabilities: host), hostFacts: HostFacts(kernelRelease: release))
            #expect(ProfileDeviation.between(host: probed, profile: Profiles.linux68).count == 4)
            #expect(ProfileDeviation.between(host: probed, profile: Profiles.linux618PVM).count == 4)
            #expect(ConformanceSuite.nearestProfile(to: probed)?.name == expected, "\(release)")
        }
    }

    @Test func globsSelectCases() {
        #expect(Glob.matches("selftest/*", "selftest/guest_memfd_test/fallocate/default/flags-0"))
        #expect(Glob.matches("*/fallocate/*", "selftest/guest_memfd_test/fallocate/default/flags-0"))
        #expect(!Glob.matches("uapi/*", "selftest/guest_memfd_test/fallocate/default/flags-0"))
        #expect(Glob.matches("uapi/region2-?lags", "uapi/region2-flags"))
        #expect(ConformanceCatalog.cases(for: "linux-6.18-pvm", matching: "uapi/region2-*").count == 14)
    }

    static func run(host: String, profile: String? = nil) throws -> ConformanceRun {
        let opened = try ConformanceSuite.open(host: host, profile: profile)
        return ConformanceSuite.run(
            ConformanceCatalog.cases(for: opened.profile.name), on: opened.target,
            profile: opened.profile, pinned: opened.pinned)
    }
}

extension KVMIntegration {
    /// The whole catalogue on /dev/kvm: every case ok or skipped, within a minute.
    @Suite struct ConformanceOnKVM {
        @Test func kvmInKTAPListsEveryCaseOkOrSkip() throws {
            let start = monotonicSeconds()
            let run = try ConformanceCatalogue.run(host: "kvm")
            let seconds = monotonicSeconds() - start
            for result in run.results {
                if case .notOK = result.status { Issue.record("\(ConformanceSuite.table(result))") }
            }
            let ktap = ConformanceReport.ktap(run)
            #expect(!ktap.contains("\nnot ok "))
            #expect(ktap.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == run.results.count)
            #expect(run.succeeded)
            #expect(seconds < 60, "the run took \(seconds) s")
        }

        @Test func kvmAgainstLinux618ReportsDeviations() throws {
            let run = try ConformanceCatalogue.run(host: "kvm", profile: "linux-6.18")
            #expect(run.deviations.contains("VM type sw-protected absent"))
            #expect(!run.succeeded)
        }
    }
}
