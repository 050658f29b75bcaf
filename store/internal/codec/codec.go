// Package codec holds the value conventions every store backend shares, so
// that the memory and SQLite backends return identical values.
package codec

import (
	"fmt"
	"math"
	"time"

	"github.com/spacepanda/spacepanda/store"
)

// Time encodes t as nanoseconds since the Unix epoch. The zero time is 0;
// times outside what int64 nanoseconds can hold (before 1678, after 2262)
// are clamped to the ends of that range.
func Time(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromTime decodes Time's encoding, in UTC.
func FromTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Norm is FromTime(Time(t)): t as a store returns it.
func Norm(t time.Time) time.Time { return FromTime(Time(t)) }

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Clamp returns v, or store.MaxEpoch if v is larger: for query bounds.
func Clamp(v uint64) int64 {
	if v > store.MaxEpoch {
		return store.MaxEpoch
	}
	return int64(v)
}

// CheckID returns store.ErrInvalid, naming what, if id is empty.
func CheckID(what string, id []byte) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: empty %s", store.ErrInvalid, what)
	}
	return nil
}

// CheckIDs checks a group id and a blob key.
func CheckIDs(groupID, key []byte) error {
	if err := CheckID("group id", groupID); err != nil {
		return err
	}
	return CheckID("blob key", key)
}

// CheckString returns store.ErrInvalid, naming what, if s is empty.
func CheckString(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", store.ErrInvalid, what)
	}
	return nil
}

// CheckEpoch returns store.ErrInvalid if epoch > store.MaxEpoch.
func CheckEpoch(epoch uint64) error {
	if epoch > store.MaxEpoch {
		return fmt.Errorf("%w: epoch too large", store.ErrInvalid)
	}
	return nil
}

// CheckLimit returns store.ErrInvalid unless limit > 0.
func CheckLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("%w: limit must be positive", store.ErrInvalid)
	}
	return nil
}
