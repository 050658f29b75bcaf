package channel

// QueuedSends is how many sends wait in the channel's queue (sendbatch.go),
// the batch under way not counted.
func QueuedSends(m *Manager, channelID string) int {
	m.sends.mu.Lock()
	defer m.sends.mu.Unlock()
	return len(m.sends.q[channelID])
}
