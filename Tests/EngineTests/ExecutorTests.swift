import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The executor on the simulator: EAGAIN retries, failures that stop the run and leave the tracked state
/// equal to what the kernel holds, compensation of listeners, and convergence on the next apply.
@Suite("Executor on the simulator")
struct ExecutorTests {
    static let size = 64 * engMiB

    /// Shared at 1-2 MiB and 4-5 MiB; the second manifest wants both private.
    static func yaml(_ backend: String, shared: [String]) -> String {
        manifestYAML(
            blocks: [engBlock(backend: backend)], mappings: [engMapping(size: size, gpa: 0)], shared: shared,
            listeners: ["vfio0"])
    }
    static let twoShared = [engRange(gpa: engMiB, size: engMiB), engRange(gpa: 4 * engMiB, size: engMiB)]

    @Test(
        "EAGAIN once on a to-private conversion is retried and succeeds",
        arguments: [
            ("gmem-convert-poc", SimulatedCall.gmemConvertPrivate), ("gmem-attributes2", .setMemoryAttributes2),
            ("linux-6.18", .setMemoryAttributes),
        ])
    func transientEAGAIN(profileName: String, call: SimulatedCall) throws {
        let profile = try #require(Profiles.named(profileName))
        let backend = profile.name == "linux-6.18" ? engLegacyMemfd : engInPlace
        let applied = try EngApplied(Self.yaml(backend, shared: Self.twoShared), on: profile)
        applied.host.simulator.injectFault(SimulatedFault(call: call, occurrence: 1, errno: .eagain))
        let (plan, report) = try applied.provisioner.convert(guest: "guest", gpa: engMiB..<(2 * engMiB), to: .private)
        #expect(report.succeeded, "\(String(describing: report.failure))")
        #expect(report.retries == 1)
        #expect(report.completed == plan.operations)
        #expect(applied.host.simulator.pendingFaults.isEmpty)
        #expect(applied.state.block(named: "ram")?.layout.value(at: engMiB) == .private)
        if backend == engInPlace {
            #expect(engSameRuns(try engGmemRuns(applied.host, applied.state), engLayoutRuns(applied.state)))
        } else {
            #expect(try engPrivateGPAs(applied.host, applied.state) == [0..<(4 * engMiB), (5 * engMiB)..<Self.size])
        }
    }

    @Test("EAGAIN from a step that is not a conversion is not retried")
    func eagainOutsideConversionsIsNotRetried() throws {
        let applied = try EngApplied(Self.yaml(engInPlace, shared: Self.twoShared), on: Profiles.gmemConvertPOC)
        applied.host.simulator.injectFault(SimulatedFault(call: .fallocate, occurrence: 1, errno: .eagain))
        let runtime = applied.host.runtime(for: "guest")
        let plan = Plan(
            guest: "guest", operations: [.populate(block: "ram", memory: .guestMemfd, offset: 0, size: engMiB)])
        let report = Executor(maxRetries: 5, retryDelayMicroseconds: 1).apply(plan, on: runtime)
        #expect(report.retries == 0)
        #expect(report.failure?.kernelError?.errno == .eagain)
    }

    /// A page pinned in the first range (a device still holds it): the to-private conversion fails for good.
    @Test(
        "a persistent EAGAIN stops the run; state, listeners, diff and the next apply all tell the truth",
        arguments: ["gmem-convert-poc", "gmem-attributes2"])
    func persistentFailure(profileName: String) throws {
        let profile = try #require(Profiles.named(profileName))
        let applied = try EngApplied(Self.yaml(engInPlace, shared: Self.twoShared), on: profile)
        let gmem = try #require(applied.state.block(named: "ram")?.guestMemfd)
        let pinned = engMiB + 3 * 4096
        try applied.host.simulator.pin(gmem: gmem, offset: pinned)
        let before = applied.state
        let eventsBefore = before.events.count

        let allPrivate = try engManifest(Self.yaml(engInPlace, shared: []))
        let (plan, report) = try applied.provisioner.apply(allPrivate)
        let abi: ConversionABI = profileName == "gmem-convert-poc" ? .gmemConvertPOC : .gmemAttributes2
        let failedOp = PlanOperation.convertGuestMemfd(
            block: "ram", offset: engMiB, size: engMiB, to: .private, abi: abi)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: engMiB, size: engMiB),
                failedOp,
                .notify(listener: "vfio0", kind: .unmap, gpa: 4 * engMiB, size: engMiB),
                .convertGuestMemfd(block: "ram", offset: 4 * engMiB, size: engMiB, to: .private, abi: abi),
            ])
        let failure = try #require(report.failure)
        #expect(failure.operation == failedOp)
        #expect(failure.kernelError?.errno == .eagain)
        #expect(failure.kernelError?.errorOffset == pinned)
        #expect(report.retries == 5)
        #expect(report.completed == [plan.operations[0]])
        #expect(report.notRun == Array(plan.operations[2...]))

        // Tracked state equals the kernel's: nothing converted.
        let state = applied.state
        #expect(state.block(named: "ram")?.layout == before.block(named: "ram")?.layout)
        #expect(engSameRuns(try engGmemRuns(applied.host, state), engLayoutRuns(state)))
        #expect(state.lastFailure?.contains("after 1 of 4 steps") == true, "\(String(describing: state.lastFailure))")
        // The listener was told unmap, the conversion failed: it is told map again.
        let newEvents = state.events.dropFirst(eventsBefore).map {
            "\($0.listener) \($0.kind.rawValue) \(engHex($0.gpa))+\(engHex($0.size))"
        }
        #expect(newEvents == ["vfio0 unmap 0x100000+0x100000", "vfio0 map 0x100000+0x100000"])
        #expect(report.compensations.map(\.kind) == [.map])
        #expect(report.compensations.map(\.gpa) == [engMiB])

        // The diff names exactly the two ranges still shared.
        let diff = try applied.provisioner.diff(allPrivate)
        #expect(
            diff.entries == [
                DiffEntry(
                    change: .changed, kind: .range, name: "ram[0x100000-0x1fffff]", expected: "private",
                    actual: "shared",
                    gpaRanges: ["0x100000-0x1fffff"]),
                DiffEntry(
                    change: .changed, kind: .range, name: "ram[0x400000-0x4fffff]", expected: "private",
                    actual: "shared",
                    gpaRanges: ["0x400000-0x4fffff"]),
            ])

        // The device lets go; applying again converges.
        try applied.host.simulator.unpin(gmem: gmem, offset: pinned)
        let (_, second) = try applied.provisioner.apply(allPrivate)
        #expect(second.succeeded, "\(String(describing: second.failure))")
        #expect(try applied.provisioner.diff(allPrivate).entries.isEmpty)
        #expect(try applied.provisioner.plan(allPrivate).operations.isEmpty)
        #expect(engSameRuns(try engGmemRuns(applied.host, applied.state), [(0..<Self.size, .private)]))
        #expect(applied.state.lastFailure == nil)
    }

    @Test("a failure while building leaves the blocks created so far tracked, and the next apply finishes")
    func failureWhileBuilding() throws {
        let profile = Profiles.linux618
        let yaml = manifestYAML(
            blocks: [
                engBlock("a", size: "4MiB", backend: engLegacyMemfd),
                engBlock("b", size: "4MiB", backend: engLegacyMemfd),
            ],
            mappings: [engMapping("a", size: 4 * engMiB, gpa: 0), engMapping("b", size: 4 * engMiB, gpa: 4 * engMiB)],
            shared: [engRange(gpa: 0, size: engMiB)], listeners: ["vfio0"])
        let host = SimulatedHost(profile: profile)
        let provisioner = Provisioner(host: host, executor: Executor(maxRetries: 2, retryDelayMicroseconds: 1))
        let manifest = try engManifest(yaml)
        // The second guest_memfd creation fails with ENOMEM.
        host.simulator.injectFault(SimulatedFault(call: .createGuestMemfd, occurrence: 2, errno: .enomem))
        let (plan, report) = try provisioner.apply(manifest)
        let failure = try #require(report.failure)
        guard case .createGuestMemfd(let block, _, _, _) = failure.operation else {
            Issue.record("failed at \(failure.operation)")
            return
        }
        #expect(block == "b")
        #expect(failure.kernelError?.errno == .enomem)
        #expect(report.retries == 0)
        let index = try #require(plan.operations.firstIndex(of: failure.operation))
        #expect(report.completed == Array(plan.operations[..<index]))
        #expect(report.notRun == Array(plan.operations[(index + 1)...]))

        let state = host.guest(named: "guest")
        #expect(state.exists)
        let a = try #require(state.block(named: "a"))
        #expect(a.guestMemfd != nil && a.sharedFD != nil && a.sharedAddress != nil)
        // b's shared backing exists (created before its guest_memfd), the guest_memfd does not.
        let b = try #require(state.block(named: "b"))
        #expect(b.guestMemfd == nil && b.sharedFD != nil)
        #expect(state.memslots.map(\.slot) == [0])
        let vm = try #require(state.vmFD)
        #expect(try host.simulator.memslots(vm: vm).map(\.slot) == [0])
        #expect(state.listeners.isEmpty, "listeners are registered only once the plan has run")

        // What remains: a's shared MiB (a was marked private whole and never converted), b half built (no
        // guest_memfd, so no memslot), and the listener never registered.
        let desired = try DesiredState(manifest: manifest, capabilities: profile)
        let diff = StateDiff(desired: desired, observed: state)
        #expect(
            diff.entries.map { "\($0.change.rawValue) \($0.kind) \($0.name)" } == [
                "changed range a[0x0-0xfffff]",
                "changed block b",
                "missing listener vfio0",
            ], "\(diff.entries)")
        #expect(diff.entries.first?.expected == "shared" && diff.entries.first?.actual == "private")
        #expect(diff.entries.first?.gpaRanges == ["0x0-0xfffff"])
        #expect(diff.entries.dropFirst().first?.actual?.contains("incomplete") == true, "\(diff.entries)")

        let replan = try provisioner.plan(manifest)
        #expect(
            replan.notes.contains("block b is rebuilt (an earlier apply stopped before it was complete)"),
            "\(replan.notes)")
        #expect(replan.operations.first == .destroyBlock(block: "b"))
        let (_, second) = try provisioner.apply(manifest)
        #expect(second.succeeded, "\(String(describing: second.failure))")
        #expect(try provisioner.plan(manifest).operations.isEmpty)
        #expect(try provisioner.diff(manifest).entries.isEmpty)
        #expect(try host.simulator.privateGPARanges(vm: vm) == [engMiB..<(8 * engMiB)])
    }

    @Test("a listener that rejects an unmap stops the conversion before the kernel is asked")
    func listenerRejection() throws {
        let applied = try EngApplied(Self.yaml(engInPlace, shared: Self.twoShared), on: Profiles.gmemConvertPOC)
        let runtime = applied.host.runtime(for: "guest")
        runtime.delivery = { event in event.kind == .unmap ? "DMA still in flight" : nil }
        let plan = try Planner.convert(
            gpa: engMiB..<(2 * engMiB), to: .private, observed: runtime.state, capabilities: Profiles.gmemConvertPOC)
        applied.host.simulator.clearCallLog()
        let report = Executor().apply(plan, on: runtime)
        #expect(report.failure?.operation == plan.operations[0])
        #expect(report.failure?.description.contains("DMA still in flight") == true)
        #expect(report.notRun == [plan.operations[1]])
        #expect(!applied.host.simulator.callLog.contains { $0.call == .gmemConvertPrivate })
        #expect(runtime.state.block(named: "ram")?.layout.value(at: engMiB) == .shared)
    }

    @Test("legacy: an attribute failure after unmap compensates; the discard never runs")
    func legacyAttributeFailure() throws {
        let applied = try EngApplied(Self.yaml(engLegacyMemfd, shared: Self.twoShared), on: Profiles.linux618)
        applied.host.simulator.injectFault(SimulatedFault(call: .setMemoryAttributes, occurrence: 1, errno: .efault))
        let before = try engPrivateGPAs(applied.host, applied.state)
        let (plan, report) = try applied.provisioner.convert(guest: "guest", gpa: engMiB..<(2 * engMiB), to: .private)
        #expect(plan.operations.count == 3)
        #expect(report.failure?.operation == .setVMAttributes(gpa: engMiB, size: engMiB, to: .private))
        #expect(report.failure?.kernelError?.errno == .efault)
        #expect(report.retries == 0)
        #expect(
            report.notRun == [
                .discard(block: "ram", memory: .sharedBacking, offset: engMiB, size: engMiB, method: .punchHole)
            ])
        #expect(report.compensations.map(\.kind) == [.map])
        #expect(try engPrivateGPAs(applied.host, applied.state) == before)
        #expect(applied.state.block(named: "ram")?.layout.value(at: engMiB) == .shared)
    }

    /// A legacy to-private conversion seen in two windows: attributes are set per window. When the second
    /// window fails, only its listener `unmap` is compensated (the first window really is private now).
    @Test("legacy, two windows: the second window's attribute call fails; only its unmap is compensated")
    func legacySecondWindowFails() throws {
        let profile = Profiles.linux618
        func yaml(shared: [String]) -> String {
            manifestYAML(
                blocks: [engBlock(size: "8MiB", backend: engLegacyMemfd)],
                mappings: [
                    engMapping(size: 4 * engMiB, gpa: 0),
                    engMapping(offset: 4 * engMiB, size: 4 * engMiB, gpa: 4 * engGiB),
                ],
                shared: shared, listeners: ["vfio0"])
        }
        let applied = try EngApplied(
            yaml(shared: [engRange(gpa: 2 * engMiB, size: 2 * engMiB), engRange(gpa: 4 * engGiB, size: engMiB)]),
            on: profile)
        let allPrivate = try engManifest(yaml(shared: []))
        let eventsBefore = applied.state.events.count
        applied.host.simulator.injectFault(SimulatedFault(call: .setMemoryAttributes, occurrence: 2, errno: .efault))
        let (plan, report) = try applied.provisioner.apply(allPrivate)
        #expect(
            plan.operations == [
                .notify(listener: "vfio0", kind: .unmap, gpa: 2 * engMiB, size: 2 * engMiB),
                .notify(listener: "vfio0", kind: .unmap, gpa: 4 * engGiB, size: engMiB),
                .setVMAttributes(gpa: 2 * engMiB, size: 2 * engMiB, to: .private),
                .setVMAttributes(gpa: 4 * engGiB, size: engMiB, to: .private),
                .discard(
                    block: "ram", memory: .sharedBacking, offset: 2 * engMiB, size: 3 * engMiB, method: .punchHole),
            ])
        #expect(report.failure?.operation == plan.operations[3])
        #expect(report.completed == Array(plan.operations[..<3]))
        #expect(report.notRun == [plan.operations[4]])
        #expect(
            report.compensations.map { "\($0.kind.rawValue) \(engHex($0.gpa))+\(engHex($0.size))" } == [
                "map 0x100000000+0x100000"
            ])
        let events = applied.state.events.dropFirst(eventsBefore).map { "\($0.kind.rawValue) \(engHex($0.gpa))" }
        #expect(events == ["unmap 0x200000", "unmap 0x100000000", "map 0x100000000"])
        // Tracked = kernel: the low window is private, the high MiB still shared.
        #expect(
            engSameRuns(
                engLayoutRuns(applied.state),
                [
                    (0..<(4 * engMiB), .private), ((4 * engMiB)..<(5 * engMiB), .shared),
                    ((5 * engMiB)..<(8 * engMiB), .private),
                ]))
        #expect(
            try engPrivateGPAs(applied.host, applied.state) == [
                0..<(4 * engMiB), (4 * engGiB + engMiB)..<(4 * engGiB + 4 * engMiB),
            ])
        #expect(
            try applied.provisioner.diff(allPrivate).entries == [
                DiffEntry(
                    change: .changed, kind: .range, name: "ram[0x400000-0x4fffff]", expected: "private",
                    actual: "shared",
                    gpaRanges: ["0x100000000-0x1000fffff"])
            ])
        let (_, second) = try applied.provisioner.apply(allPrivate)
        #expect(second.succeeded)
        #expect(try applied.provisioner.diff(allPrivate).entries.isEmpty)
    }
}
