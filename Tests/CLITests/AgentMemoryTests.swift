import Testing

@testable import gmemctl

@Suite struct AgentMemoryTests {
    @Test func aRestartMarksTheOldInstancesGuestsLost() {
        var memory = AgentMemory()
        memory.met(socket: "/s", instance: "a", startedAt: "T1")
        memory.guestExists("g", socket: "/s")
        #expect(memory.restartNotice(guest: "g", socket: "/s") == nil)
        memory.met(socket: "/s", instance: "a", startedAt: "T1")
        #expect(memory.restartNotice(guest: "g", socket: "/s") == nil, "the same instance again is no restart")
        memory.met(socket: "/s", instance: "b", startedAt: "T2")
        let notice = memory.restartNotice(guest: "g", socket: "/s")
        #expect(notice?.hasPrefix("the agent was restarted (instance a, started T1") == true)
        #expect(notice?.hasSuffix("guests it held are gone: apply again") == true)
        #expect(memory.restartNotice(guest: "never-seen", socket: "/s") == nil)
        memory.guestExists("g", socket: "/s")
        #expect(memory.restartNotice(guest: "g", socket: "/s") == nil, "applied again in the new instance")
    }

    @Test func destroyedGuestsAreForgotten() {
        var memory = AgentMemory()
        memory.met(socket: "/s", instance: "a", startedAt: "T1")
        memory.guestExists("g", socket: "/s")
        memory.guestGone("g", socket: "/s")
        memory.met(socket: "/s", instance: "b", startedAt: "T2")
        #expect(memory.restartNotice(guest: "g", socket: "/s") == nil)
    }
}
