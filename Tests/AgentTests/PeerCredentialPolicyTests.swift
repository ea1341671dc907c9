import Testing
@testable import Engine

@Suite struct PeerCredentialPolicyTests {
}
