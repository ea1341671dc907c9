import GmemAgent
import Testing

@Suite struct PeerCredentialPolicyTests {
    @Test func theAgentsOwnUserAndRootAreServed() {
        #expect(PeerPolicy.allows(peerUID: 1000, agentUID: 1000))
        #expect(PeerPolicy.allows(peerUID: 0, agentUID: 1000))
        #expect(PeerPolicy.allows(peerUID: 0, agentUID: 0))
    }

    @Test func anyoneElseIsRefusedWithTheReason() {
        #expect(!PeerPolicy.allows(peerUID: 65534, agentUID: 0))
        #expect(!PeerPolicy.allows(peerUID: 1001, agentUID: 1000))
        let reason = PeerPolicy.refusal(peer: PeerCredentials(pid: 42, uid: 65534, gid: 65534), agentUID: 1000)
        #expect(reason == "uid 65534 (pid 42) may not use this agent: it serves uid 1000 and root only")
        #expect(PeerPolicy.refusal(peer: PeerCredentials(pid: 42, uid: 1000, gid: 1000), agentUID: 1000) == nil)
    }
}
