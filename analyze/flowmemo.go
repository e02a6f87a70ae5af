package analyze

// FlowMemo remembers the flow of the previous lookup and the value found for
// it, in front of an analyzer's map keyed by input and FlowKey. Packets come
// in runs of one flow (a bulk transfer and its ACKs), and a run then costs a
// key comparison per packet instead of building a map key, hashing it and
// probing the map. The memo holds a copy of what the map holds: whoever
// deletes or replaces the entry must Forget (or Set) it.
type FlowMemo[V any] struct {
	input int
	key   FlowKey
	val   V
	ok    bool
}

// Get returns the value remembered for the flow, if it is the one
// remembered.
func (m *FlowMemo[V]) Get(input int, k *FlowKey) (V, bool) {
	if m.ok && m.input == input && m.key == *k {
		return m.val, true
	}
	var zero V
	return zero, false
}

// Set remembers v as the value of the flow.
func (m *FlowMemo[V]) Set(input int, k *FlowKey, v V) {
	m.input, m.key, m.val, m.ok = input, *k, v, true
}

// Forget drops what is remembered (call it when entries are deleted).
func (m *FlowMemo[V]) Forget() {
	var zero V
	m.val, m.ok = zero, false
}
