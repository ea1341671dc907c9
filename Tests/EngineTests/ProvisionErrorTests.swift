import Config
import Testing

@testable import GmemCore
@testable import GmemSimulator

@Suite struct ProvisionErrorTests {
    @Test func destroyingAGuestTheHostDoesNotHoldSaysSoAsAValue() throws {
        let provisioner = Provisioner(host: SimulatedHost(profile: Profiles.linux618))
        do {
            _ = try provisioner.destroy(guest: "nobody")
            Issue.record("destroy of a missing guest succeeded")
        } catch {
            guard case .guestNotFound(let guest) = error.reason else {
                Issue.record("reason \(error.reason), not guestNotFound")
                return
            }
            #expect(guest == "nobody")
            #expect(error.message == "guest nobody does not exist on sim:linux-6.18")
        }
    }
}
