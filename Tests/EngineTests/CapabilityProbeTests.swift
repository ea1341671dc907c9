import Config
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
          arguments: Profiles.names)
    func probeFindsProfile(name: String) throws {
        let profile = try #require(Profiles.named(name))
        let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile), optIn: Self.optIn(for: profile))
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

    @Test("without opt-in an unmerged ABI is never guessed: no VM type converts in place")
    func noGuessWithoutOptIn() throws {
        for profile in [Profiles.gmemConvertPOC, Profiles.gmemAttributes2, Profiles.gmemAttributes2SevSnp] {
            let probed = try CapabilityProbe.probe(SimulatedKernel(capabilities: profile))
            #expect(!probed.vmTypes.contains { $0.conversion.convertsInPlace }, "\(profile.name): \(probed.vmTypes)")
            #expect(CapabilityProbe.matchingProfile(probed)?.name != profile.name)
        }
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
