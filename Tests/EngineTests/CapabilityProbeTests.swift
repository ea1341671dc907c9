import Config
import Foundation
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// `CapabilityProbe` on the simulator of every built-in profile: probing must find the profile back.
@Suite("CapabilityProbe")
struct CapabilityProbeTests {
    /// The opt-in a user gives (`--kvm-abi`) for kernels of unmerged ABIs.
    static func optIn(for profile: Capabilities) -> ConversionABI? {
        profile.vmTypes.map(\.conversion).first { $0.convertsInPlace }
    }

    @Test(
        "probing a simulated kernel of each profile gives its VM types, and matchingProfile finds it",
        arguments: Profiles.all.map(\.name))
    func probeFindsProfile(name: String) throws {
        let profile = try #require(Profiles.named(name))
        // The simulated host's sysfs: the module parameter as the profile has it.
        let facts = HostFacts(gmemInPlaceConversion: profile.gmemInPlaceConversion)
        let probed = try CapabilityProbe.probe(
            SimulatedKernel(capabilities: profile), optIn: Self.optIn(for: profile),
            hostFacts: facts)
        #expect(probed.vmTypes == profile.vmTypes, "\(name): probed \(probed.vmTypes)")
        #expect(probed.guestMemfdFlagSet == profile.guestMemfdFlagSet)
        #expect(probed.vmTypesMask == profile.vmTypesMask)
        #expect(probed.preFault == profile.preFault)
        #expect(probed.maxMemslots == profile.maxMemslots)
        #expect(CapabilityProbe.matchingProfile(probed)?.name == name)
    }

    @Test("probing leaves no fd behind")
    func probeClosesEverything() throws {
        for profile in Profiles.all {
            let kernel = SimulatedKernel(capabilities: profile)
            let before = kernel.openDescriptors
            _ = try CapabilityProbe.probe(kernel, optIn: Self.optIn(for: profile))
            #expect(kernel.openDescriptors == before, "\(profile.name)")
        }
    }

    @Test("without opt-in the 2025 POC (colliding capability numbers) is never guessed")
    func noGuessWithoutOptIn() throws {
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: Profiles.gmemConvertPOC))
        #expect(!probed.vmTypes.contains { $0.conversion.convertsInPlace }, "\(probed.vmTypes)")
    }

    @Test(
        "in-place mode is found by the ioctl, without opt-in or sysfs; evidence says so and 250 only confirms",
        arguments: [Profiles.linux74InPlace, Profiles.linux74InPlaceSevSnp, Profiles.linux74InPlaceTDX])
    func inPlaceFoundByBehaviour(profile: Capabilities) throws {
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile))
        #expect(probed.vmTypes == profile.vmTypes)
        #expect(probed.gmemInPlaceConversion == true)
        #expect(CapabilityProbe.matchingProfile(probed)?.name == profile.name)
        #expect(
            probed.evidence.contains {
                $0.contains("KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd works") && $0.contains("confirming")
            },
            "\(probed.evidence)")
        #expect(probed.evidence.contains { $0.contains("deduced") }, "\(probed.evidence)")
    }

    @Test(
        "ENOTTY means absent: a 6.18 or 7.4 (mode off) kernel probes as per-VM attributes, evidence names ENOTTY",
        arguments: [Profiles.linux618, Profiles.linux74])
    func attributes2AbsentIsENOTTY(profile: Capabilities) throws {
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile))
        #expect(!probed.vmTypes.contains { $0.conversion == .gmemAttributes2 })
        #expect(probed.evidence.contains { $0.contains("ENOTTY") }, "\(probed.evidence)")
    }

    @Test("the sysfs parameter is read where it exists; address sizes come from /proc/cpuinfo's line")
    func hostFacts() throws {
        #expect(HostFacts.parsePhysicalBits("address sizes\t: 48 bits physical, 48 bits virtual") == 48)
        #expect(HostFacts.parsePhysicalBits("address sizes\t: 46 bits physical, 57 bits virtual") == 46)
        #expect(HostFacts.parsePhysicalBits("flags : fpu") == nil)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gmemctl-facts-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let parameter = dir.appendingPathComponent("gmem_in_place_conversion").path
        let cpuinfo = dir.appendingPathComponent("cpuinfo").path
        try "Y\n".write(toFile: parameter, atomically: true, encoding: .utf8)
        try "processor : 0\naddress sizes\t: 46 bits physical, 48 bits virtual\n".write(
            toFile: cpuinfo, atomically: true, encoding: .utf8)
        let facts = HostFacts.read(parameter: parameter, cpuinfo: cpuinfo)
        #expect(facts.gmemInPlaceConversion == true && facts.physicalAddressBits == 46)
        #expect(
            facts.kernelRelease.flatMap(KernelGeneration.init(release:)) != nil,
            "uname: \(String(describing: facts.kernelRelease))")
        #expect(
            HostFacts.read(parameter: dir.appendingPathComponent("none").path, cpuinfo: cpuinfo).gmemInPlaceConversion
                == nil)
    }

    /// The limit is asked of the kernel (a memslot just below 2^bits), not taken from the CPU's width: with
    /// shadow paging (this host) KVM allows 52 bits whatever /proc/cpuinfo says.
    @Test(
        "the guest-physical limit is probed by binding a memslot, whatever /proc/cpuinfo says", arguments: [46, 48, 52])
    func physicalLimitByBehaviour(bits: Int) throws {
        var profile = Profiles.linux618
        profile.physicalAddressBits = bits
        let kernel = SimulatedKernel(capabilities: profile)
        let before = kernel.openDescriptors
        let probed = try CapabilityProbe.probe(kernel, hostFacts: HostFacts(physicalAddressBits: 40))
        #expect(probed.physicalAddressBits == bits)
        #expect(probed.evidence.contains { $0.contains("one-page memslot") }, "\(probed.evidence)")
        #expect(kernel.openDescriptors == before)
    }

    /// Capability 250 is not final and a PowerPC capability wants the same number: the ioctl decides. Each
    /// kernel here has 250 and the ioctl disagree; a probe that trusted 250 would get the conversion wrong.
    @Test("capability 250 says PRIVATE but KVM_SET_MEMORY_ATTRIBUTES2 is ENOTTY: no in-place conversion")
    func capability250WithoutTheIoctl() throws {
        let profile = Profiles.linux74InPlace
        let kernel = SimulatedKernel(capabilities: profile)
        let privateTypes = profile.vmTypes.filter { $0.vmType.hasPrivateMemory }
        for _ in privateTypes { kernel.injectFault(SimulatedFault(call: .setMemoryAttributes2, errno: .enotty)) }
        let probed = try CapabilityProbe.probe(kernel)
        for type in privateTypes {
            let vm = try kernel.createVM(type: type.vmType.kvmValue)
            #expect(
                try kernel.checkExtension(KVMConstants.capGuestMemfdMemoryAttributes, vm: vm) == 8, "250 claims PRIVATE"
            )
            try kernel.close(vm)
        }
        #expect(!probed.vmTypes.contains { $0.conversion == .gmemAttributes2 }, "\(probed.vmTypes)")
        #expect(probed.gmemInPlaceConversion == nil, "no parameter read, and no working ioctl to deduce the mode from")
        #expect(probed.evidence.filter { $0.contains("ENOTTY") }.count == privateTypes.count, "\(probed.evidence)")
        #expect(
            probed.evidence.contains {
                $0.contains("capability 250 reports PRIVATE") && $0.contains("not taken as evidence")
            },
            "\(probed.evidence)")
        #expect(!probed.evidence.contains { $0.contains("confirming") }, "\(probed.evidence)")
    }

    @Test("capability 250 is 0 (the PowerPC meaning) but KVM_SET_MEMORY_ATTRIBUTES2 works: in-place conversion")
    func workingIoctlWithoutCapability250() throws {
        var profile = Profiles.linux74InPlace
        profile.systemExtensions[KVMConstants.capGuestMemfdMemoryAttributes] = 0
        let kernel = SimulatedKernel(capabilities: profile)
        let probed = try CapabilityProbe.probe(kernel)
        let vm = try kernel.createVM(type: VMType.swProtected.kvmValue)
        #expect(try kernel.checkExtension(KVMConstants.capGuestMemfdMemoryAttributes, vm: vm) == 0)
        try kernel.close(vm)
        #expect(probed.vmTypes == Profiles.linux74InPlace.vmTypes, "\(probed.vmTypes)")
        #expect(probed.gmemInPlaceConversion == true)
        #expect(CapabilityProbe.matchingProfile(probed)?.name == "linux-7.4-in-place")
        #expect(
            probed.evidence.contains {
                $0.contains("works") && $0.contains("capability 250 reports 0, which is not taken as evidence")
            },
            "\(probed.evidence)")
    }

    /// This development host (6.18 PVM) without guest_memfd: only default VMs, capabilities 234, 236 and 244 are
    /// 0. It deviates from linux-6.8 and from linux-6.18-pvm in four ways each.
    static let hostWithoutGuestMemfd: Capabilities = {
        let types = [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none)
        ]
        return Capabilities(
            name: "kvm", summary: "a 6.18 PVM host without guest_memfd", guestMemfdFlagSet: .none, vmTypes: types,
            systemExtensions: [
                KVMConstants.capUserMemory2: 1, KVMConstants.capMemoryFaultInfo: 1, KVMConstants.capMemoryAttributes: 0,
                KVMConstants.capGuestMemfd: 0, KVMConstants.capVMTypes: 1, KVMConstants.capPreFaultMemory: 0,
                KVMConstants.capGuestMemfdFlags: 0, KVMConstants.capNrMemslots: 32764,
            ],
            hugePageSizes: [2 << 20], preFault: false)
    }()

    @Test(
        "a host that ties between profiles gets the one of its kernel release's generation, else the newest",
        arguments: [
            ("6.18.44-fc-v1272", "linux-6.18-pvm"), ("6.9.3", "linux-6.8"), ("7.2.0-rc1", "linux-6.18-pvm"),
            (nil, "linux-6.18-pvm"), ("5.15.0", "linux-6.8"),
        ] as [(String?, String)])
    func nearestProfileTie(release: String?, expected: String) throws {
        let probed = try CapabilityProbe.probe(
            SimulatedKernel(capabilities: Self.hostWithoutGuestMemfd),
            hostFacts: HostFacts(kernelRelease: release))
        #expect(probed.kernelRelease == release)
        #expect(CapabilityProbe.matchingProfile(probed) == nil)
        let distance = { (profile: Capabilities) in
            profile.name == "linux-6.8" || profile.name == "linux-6.18-pvm" ? 4 : 5
        }
        #expect(CapabilityProbe.nearestProfile(probed, distance: distance)?.name == expected)
    }

    @Test("kernel generations parse from uname releases and profile names")
    func kernelGenerations() {
        #expect(KernelGeneration(release: "6.18.44-fc-v1272") == KernelGeneration(major: 6, minor: 18))
        #expect(KernelGeneration(release: "7.4-rc2") == KernelGeneration(major: 7, minor: 4))
        #expect(
            KernelGeneration(release: "6.8") ?? KernelGeneration(major: 0, minor: 0)
                < KernelGeneration(major: 6, minor: 11))
        #expect(KernelGeneration(release: "gmem") == nil)
        #expect(Profiles.generation(of: Profiles.linux616TDX) == KernelGeneration(major: 6, minor: 16))
        #expect(Profiles.generation(of: Profiles.gmemAttributes2) == KernelGeneration(major: 7, minor: 4))
        #expect(Profiles.generation(of: Profiles.gmemConvertPOC) == nil)
    }

    @Test("opting in to an ABI the kernel does not have finds nothing in place")
    func wrongOptIn() throws {
        for (profile, wrong) in [
            (Profiles.linux618, ConversionABI.gmemConvertPOC), (Profiles.linux618, .gmemAttributes2),
            (Profiles.gmemConvertPOC, .gmemAttributes2), (Profiles.gmemAttributes2, .gmemConvertPOC),
        ] {
            let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile), optIn: wrong)
            #expect(
                !probed.vmTypes.contains { $0.conversion == wrong },
                "\(profile.name) with \(wrong.rawValue): \(probed.vmTypes)")
        }
    }

    @Test("a probed simulator plans the same as its profile")
    func probedPlansLikeProfile() throws {
        let yaml = manifestYAML(
            blocks: [engBlock(backend: engAuto)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)],
            shared: [engRange(gpa: engMiB, size: engMiB)], listeners: ["vfio0"])
        for profile in [Profiles.linux618, Profiles.gmemConvertPOC, Profiles.gmemAttributes2] {
            let probed = try CapabilityProbe.probe(
                SimulatedKernel(capabilities: profile), optIn: Self.optIn(for: profile))
            let (_, fromProfile) = try engFreshPlan(yaml, on: profile)
            let (_, fromProbe) = try engFreshPlan(yaml, on: probed)
            #expect(fromProbe.operations == fromProfile.operations, "\(profile.name)")
        }
    }
}

/// The profile table: generations as docs/kernels.md describes them.
@Suite("Capability profiles")
struct CapabilityProfileTests {
    @Test("gmem-attributes2 is an alias: linux-7.4-in-place's capabilities under the old name")
    func aliases() throws {
        for (alias, target) in Profiles.aliases {
            let aliased = try #require(Profiles.named(alias))
            let profile = try #require(Profiles.named(target))
            #expect(aliased.name == alias && aliased.summary.hasPrefix("alias of \(target)"))
            #expect(aliased.vmTypes == profile.vmTypes && aliased.systemExtensions == profile.systemExtensions)
            #expect(aliased.gmemInPlaceConversion == true)
            #expect(Profiles.names.contains(alias) && !Profiles.all.contains { $0.name == alias })
        }
    }

    @Test("pre-fault (236) arrives in 6.11; 6.8 has none")
    func preFaultGeneration() {
        #expect(!Profiles.linux68.preFault && Profiles.linux68.systemExtension(KVMConstants.capPreFaultMemory) == 0)
        #expect(Profiles.linux611.preFault && Profiles.linux611.systemExtension(KVMConstants.capPreFaultMemory) == 1)
        #expect(Profiles.linux616TDX.vmType(.tdx) != nil && Profiles.linux611.vmType(.tdx) == nil)
        #expect(Profiles.linux611.vmType(.sevSnp) != nil)
    }

    @Test("the 6.18 family describes 6.18-7.3; 7.4 comes in two modes")
    func generations() {
        for profile in [Profiles.linux618, Profiles.linux618SevSnp, Profiles.linux618TDX] {
            #expect(profile.summary.contains("6.18-7.3"), "\(profile.name)")
        }
        #expect(
            Profiles.linux74.gmemInPlaceConversion == false && Profiles.linux74.vmTypes == Profiles.linux618.vmTypes)
        let inPlace = Profiles.linux74InPlace
        #expect(inPlace.inPlaceMode)
        #expect(inPlace.systemExtension(KVMConstants.capMemoryAttributes) == 0)
        #expect(inPlace.systemExtension(KVMConstants.capGuestMemfdMemoryAttributes) == 8)
        for type in inPlace.vmTypes where type.vmType.hasPrivateMemory {
            #expect(type.conversion == .gmemAttributes2 && type.guestMemfdFlags & KVMConstants.gmemFlagInitShared != 0)
        }
    }
}
