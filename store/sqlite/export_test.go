package sqlite

// SealRecordV4 is a record value as a program before migration 5 sealed
// it (tests build version 4 files with it).
func SealRecordV4(s *Store, kind, id string, value []byte) []byte {
	return s.box.Seal(adRecord(kind, id), value)
}
