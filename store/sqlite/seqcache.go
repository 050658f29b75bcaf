package sqlite

import "context"

// History seqs without a query per message. AppendMessage gives a message
// the channel's last seq + 1; asking the database for it (SELECT MAX(seq))
// was a statement at every message sent or received. The writer knows the
// answer: only AppendMessage inserts history rows, on the one writer
// connection, and rows leave only with their channel (ON DELETE CASCADE).
//
// So the Store keeps each channel's last seq as of the last commit
// (Store.seqs, touched only by the batch running on the writer), a batch
// keeps what its calls that succeeded appended (seqBatch.pending, merged
// into Store.seqs once the commit succeeded), and a call keeps what it
// appended itself (tx.assigned, merged into pending once its savepoint is
// released, dropped when it is rolled back). A channel write (a delete
// takes the channel's rows) empties pending and the call's own, and sets
// Store.seqs aside for the rest of the batch; it is emptied at the end.
// Whatever is not known is asked for, as before.

// maxCachedSeqs bounds Store.seqs; past it, it starts again empty.
const maxCachedSeqs = 4096

// seqBatch is a batch's part of the seqs (one per runBatch).
type seqBatch struct {
	committed       map[string]uint64 // Store.seqs
	pending         map[string]uint64
	channelsWritten bool
}

// nextSeq is the seq AppendMessage gives a new message of channelID in t.
func (t *tx) nextSeq(ctx context.Context, channelID string) (uint64, error) {
	if last, ok := t.assigned[channelID]; ok {
		return last + 1, nil
	}
	if b := t.seqs; b != nil {
		if last, ok := b.pending[channelID]; ok {
			return last + 1, nil
		}
		if last, ok := b.committed[channelID]; ok && !b.channelsWritten {
			return last + 1, nil
		}
	}
	var seq uint64
	err := t.row(ctx, nil, `SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE channel_id = ?`, []any{channelID}, &seq)
	return seq, err
}

// appended records that t gave seq to a message of channelID.
func (t *tx) appended(channelID string, seq uint64) {
	if t.assigned == nil {
		t.assigned = map[string]uint64{}
	}
	t.assigned[channelID] = seq
}

// channelsWrite is writeChannels' part: the seqs known may be of rows the
// write deletes.
func (t *tx) channelsWrite() {
	clear(t.assigned)
	if b := t.seqs; b != nil {
		b.channelsWritten = true
		clear(b.pending)
	}
}

// released merges a call's seqs into its batch (its savepoint released).
func (b *seqBatch) released(t *tx) {
	for ch, seq := range t.assigned {
		b.pending[ch] = seq
	}
}

// committed updates the Store's seqs once the batch is durable.
func (s *Store) seqsCommitted(b *seqBatch) {
	if b.channelsWritten || len(s.seqs)+len(b.pending) > maxCachedSeqs {
		s.seqs = map[string]uint64{}
	}
	for ch, seq := range b.pending {
		s.seqs[ch] = seq
	}
}
