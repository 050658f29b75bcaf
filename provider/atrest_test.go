package provider_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/mls"
	"github.com/spacepanda/spacepanda/provider"
	"github.com/spacepanda/spacepanda/store"
	"github.com/spacepanda/spacepanda/store/sqlite"
)

// secretsOf returns the private keys the provider stored: the device's
// signature private key, the user's identity key and each key package's
// init and leaf private keys,
// read back from the store with its key (the way the provider reads them).
func secretsOf(t *testing.T, p *provider.Provider, kps [][]byte) map[string][]byte {
	t.Helper()
	id, err := p.Store().Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.PrivateIdentity) != 67 {
		t.Fatalf("private identity of %d bytes, want 67", len(id.PrivateIdentity))
	}
	sec := map[string][]byte{"signature private key": id.SignaturePrivateKey,
		// version, length, then the RFC 8032 seed of the identity key
		"identity key seed": id.PrivateIdentity[2:34]}
	for i, b := range kps {
		kp := keyPackage(t, enc(b))
		ref, err := kp.Ref(p.Suite())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := p.Store().KeyPackage(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		sec["init private key "+string(rune('0'+i))] = rec.InitPrivateKey
		sec["leaf private key "+string(rune('0'+i))] = rec.LeafPrivateKey
	}
	for name, s := range sec {
		if len(s) < 16 {
			t.Fatalf("%s is %d bytes: too short to grep for", name, len(s))
		}
	}
	return sec
}

// copyDB copies store.db and its WAL/SHM files (as a backup or a thief
// would, while the provider runs) into a fresh directory, without store.key.
func copyDB(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	files, _ := filepath.Glob(filepath.Join(from, "store.db*"))
	if len(files) == 0 {
		t.Fatal("no store.db")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// grepDir fails if any file in dir holds any of the secrets.
func grepDir(t *testing.T, dir string, secrets map[string][]byte) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		total += len(b)
		for name, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s holds the %s in the clear", e.Name(), name)
			}
		}
	}
	if total == 0 {
		t.Fatal("nothing to grep")
	}
}

// TestSecretsAtRest: a copy of store.db without store.key holds no private
// key, and does not open.
func TestSecretsAtRest(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, "bob")
	kps, err := p.GenerateKeyPackages(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := p.GenerateLastResortKeyPackage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sec := secretsOf(t, p, append(kps, lr))
	// Also a group, so the group state blobs are on disk too.
	gid, err := p.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	encrypt(t, p, gid, "secret-plaintext")

	live := copyDB(t, dir) // while open: WAL not checkpointed
	grepDir(t, live, sec)
	p.Close()
	closed := copyDB(t, dir)
	grepDir(t, closed, sec)

	// The copy does not open: the key file is not there (a new one must not
	// be made for an existing database), and a new identity must not appear.
	if q, err := provider.Open(ctx, closed, provider.OpenOptions{Options: provider.Options{Name: "bob"}}); err == nil {
		q.Close()
		t.Fatal("a copy of store.db opened without store.key")
	}
	// With the key file it does, and it is the same identity.
	if err := copyFile(filepath.Join(dir, "store.key"), filepath.Join(closed, "store.key")); err != nil {
		t.Fatal(err)
	}
	q := open(t, closed, "bob")
	if !bytes.Equal(q.SignaturePublicKey(), p.SignaturePublicKey()) {
		t.Fatal("copy with its key is another identity")
	}
	if c, err := q.KeyPackageCount(ctx); err != nil || c.OneTime != 3 || c.LastResort != 1 {
		t.Fatalf("copy's key packages: %+v, %v", c, err)
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// TestPassphrase: a passphrase store holds no private key in the clear, the
// right passphrase reopens the identity, a wrong one is a clear error.
func TestPassphrase(t *testing.T) {
	dir := t.TempDir()
	cheap := sqlite.Argon2Params{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}
	o := provider.OpenOptions{Options: provider.Options{Name: "bob"}, Passphrase: []byte("correct horse"), Argon2: cheap}
	p, err := provider.Open(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	kps, err := p.GenerateKeyPackages(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	sec := secretsOf(t, p, kps)
	pub := p.SignaturePublicKey()
	p.Close()
	if _, err := os.Stat(filepath.Join(dir, "store.key")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("passphrase store made a key file: %v", err)
	}
	grepDir(t, dir, sec)

	bad := o
	bad.Passphrase = []byte("wrong horse")
	_, err = provider.Open(ctx, dir, bad)
	if !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v, want store.ErrWrongKey", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "wrong key") || strings.Contains(msg, "horse") {
		t.Fatalf("wrong passphrase error %q: should say wrong key and not echo the passphrase", msg)
	}
	// Without any passphrase the database is not silently opened with a
	// fresh key file.
	if q, err := provider.Open(ctx, dir, provider.OpenOptions{}); err == nil {
		q.Close()
		t.Fatal("passphrase store opened without the passphrase")
	}
	p, err = provider.Open(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !bytes.Equal(p.SignaturePublicKey(), pub) {
		t.Fatal("reopened with the passphrase: another identity")
	}
	// The key packages still work: a Welcome finds them.
	alice := open(t, t.TempDir(), "alice")
	gid, err := alice.CreateGroup(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := alice.CommitNow(ctx, gid, mls.CommitOptions{Add: []*mls.KeyPackage{keyPackage(t, enc(kps[1]))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Join(ctx, res.Welcome, res.RatchetTree); err != nil {
		t.Fatalf("join after reopening with the passphrase: %v", err)
	}
}
