import Config
import Foundation
@testable import GmemCore
@testable import GmemSimulator
import Testing

/// `CapabilityProbe` on the simulator of every built-in profile: probing must find the profile back.
@Suite("CapabilityProbe")
struct CapabilityProbeTests {
    /// The opt-in a user gives (`--kvm-abi`) for kernels of unmerged ABIs.
    static func optIn(for profile: Capabilities) -> ConversionABI? {
        profile.vmTypes.map(\.conversion).first { $0.convertsInPlace }
    }

    @Test("probing a simulated kernel of each profile gives its VM types, and matchingProfile finds it",
          arguments: Profiles.all.map(\.name))
    func probeFindsProfile(name: String) throws {
        let profile = try #require(Profiles.named(name))
        // The simulated host's sysfs: the module parameter as the profile has it.
        let facts = HostFacts(gmemInPlaceConversion: profile.gmemInPlaceConversion)
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile), optIn: Self.optIn(for: profile),
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

    @Test("in-place mode is found by the ioctl, without opt-in or sysfs; evidence says so and 250 only confirms",
          arguments: [Profiles.linux74InPlace, Profiles.linux74InPlaceSevSnp, Profiles.linux74InPlaceTDX])
    func inPlaceFoundByBehaviour(profile: Capabilities) throws {
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile))
        #expect(probed.vmTypes == profile.vmTypes)
        #expect(probed.gmemInPlaceConversion == true)
        #expect(CapabilityProbe.matchingProfile(probed)?.name == profile.name)
        #expect(probed.evidence.contains { $0.contains("KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd works") && $0.contains("confirming") },
                "\(probed.evidence)")
        #expect(probed.evidence.contains { $0.contains("deduced") }, "\(probed.evidence)")
    }

    @Test("ENOTTY means absent: a 6.18 or 7.4 (mode off) kernel probes as per-VM attributes, evidence names ENOTTY",
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
        try "processor : 0\naddress sizes\t: 46 bits physical, 48 bits virtual\n".write(toFile: cpuinfo, atomically: true, encoding: .utf8)
        let facts = HostFacts.read(parameter: parameter, cpuinfo: cpuinfo)
        #expect(facts == HostFacts(gmemInPlaceConversion: true, physicalAddressBits: 46))
        #expect(HostFacts.read(parameter: dir.appendingPathComponent("none").path, cpuinfo: cpuinfo).gmemInPlaceConversion == nil)
    }

    /// The limit is asked of the kernel (a memslot just below 2^bits), not taken from the CPU's width: with
    /// shadow paging (this host) KVM allows 52 bits whatever /proc/cpuinfo says.
    @Test("the guest-physical limit is probed by binding a memslot, whatever /proc/cpuinfo says", arguments: [46, 48, 52])
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

    @Test("opting in to an ABI the kernel does not have finds nothing in place")
    func wrongOptIn() throws {
        for (profile, wrong) in [(Profiles.linux618, ConversionABI.gmemConvertPOC), (Profiles.linux618, .gmemAttributes2),
                                 (Profiles.gmemConvertPOC, .gmemAttributes2), (Profiles.gmemAttributes2, .gmemConvertPOC)] {
            let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile), optIn: wrong)
            #expect(!probed.vmTypes.contains { $0.conversion == wrong }, "\(profile.name) with \(wrong.rawValue): \(probed.vmTypes)")
        }
    }

    @Test("a probed simulator plans the same as its profile")
    func probedPlansLikeProfile() throws {
        let yaml = engYAML(blocks: [engBlock(backend: engAuto)], mappings: [engMapping(size: 64 * engMiB, gpa: 0)],
                           shared: [engRange(gpa: engMiB, size: engMiB)], listeners: ["vfio0"])
        for profile in [Profiles.linux618, Profiles.gmemConvertPOC, Profiles.gmemAttributes2] {
            let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile), optIn: Self.optIn(for: profile))
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
        #expect(Profiles.linux74.gmemInPlaceConversion == false && Profiles.linux74.vmTypes == Profiles.linux618.vmTypes)
        let inPlace = Profiles.linux74InPlace
        #expect(inPlace.inPlaceMode)
        #expect(inPlace.systemExtension(KVMConstants.capMemoryAttributes) == 0)
        #expect(inPlace.systemExtension(KVMConstants.capGuestMemfdMemoryAttributes) == 8)
        for type in inPlace.vmTypes where type.vmType.hasPrivateMemory {
            #expect(type.conversion == .gmemAttributes2 && type.guestMemfdFlags & KVMConstants.gmemFlagInitShared != 0)
        }
    }
}
