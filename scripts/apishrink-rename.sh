#!/usr/bin/env bash
# apishrink-rename.sh ports Go code to the engine API of branch apishrink
# (issue 11 "Structure"): the vector runner moved under mls/, the protocol
# vocabulary lives only in mls/tree (no aliases in mls), no stutter
# (mls.MLSMessage -> mls.Message, tree.NewTree -> tree.New), and engine
# internals unexported.
#
# Usage, at the root of any branch's tree (a git checkout of this module):
#
#	bash scripts/apishrink-rename.sh [ROOT]
#	go build ./... && go vet ./...
#
# It is idempotent: running it twice changes nothing the second time. It
# rewrites with `gofmt -r` (syntax-aware: a rule for an unqualified name is
# applied only to the files of the package that declares it, a rule for
# mls.X to every other file), then fixes struct-literal keys that gofmt -r
# qualifies by mistake, doc comments and imports.
set -euo pipefail
cd "${1:-.}"
M=github.com/spacepanda/spacepanda

# pkgfiles DIR NAME: the .go files of package NAME (and its tests) in DIR.
pkgfiles() { grep -l "^package $2\$" "$1"/*.go 2>/dev/null || true; }
# otherfiles DIR NAME: every .go file of the module except package NAME in DIR.
otherfiles() {
	find . -name '*.go' -not -path './.git/*' -not -path './node_modules/*' -not -path '*/testdata/*' |
		while read -r f; do
			if [ "$(dirname "$f")" = "./$1" ] && grep -q "^package $2\$" "$f"; then continue; fi
			echo "$f"
		done
}
# rw RULE FILE...: gofmt -r RULE on the files (none: nothing to do).
rw() {
	local rule=$1
	shift
	if [ $# -gt 0 ]; then gofmt -r "$rule" -w "$@"; fi
}

# --- 1. the vector runner moves under mls/ (it may import mls/internal) ---
if [ -d conformance ]; then
	mkdir -p mls/conformance
	for f in conformance/*; do
		b=$(basename "$f")
		if [ -e "mls/conformance/$b" ]; then
			echo "apishrink-rename: conformance/$b and mls/conformance/$b both exist; keeping mls/conformance/$b, merge by hand" >&2
			continue
		fi
		if git ls-files --error-unmatch "$f" >/dev/null 2>&1; then git mv "$f" "mls/conformance/$b"; else mv "$f" "mls/conformance/$b"; fi
	done
	rmdir conformance 2>/dev/null || true
fi
{ find . -name '*.go' -not -path './.git/*' -exec grep -l "\"$M/conformance\"" {} + 2>/dev/null || true; } |
	xargs -r sed -i "s#\"$M/conformance\"#\"$M/mls/conformance\"#"
# Its public API is RunDir; the rest is for its own test.
CONF=$(pkgfiles mls/conformance conformance)
OUT_CONF=$(otherfiles mls/conformance conformance)
for p in 'Kinds kinds' 'RunFile runFile' 'Hex hexBytes' 'Kind vectorKind' 'Result caseResult' 'FileReport fileReport'; do
	set -- $p
	rw "$1 -> $2" $CONF
	rw "conformance.$1 -> conformance.$2" $OUT_CONF
	sed -i -E "s#^(\s*)// $1\b#\1// $2#" $CONF
done
# (gofmt -r renames a selector's name too: testvec.Hex is not ours)
sed -i 's/\btestvec\.hexBytes\b/testvec.Hex/g' $CONF

# --- 2. renames in package mls (stutter and unexported internals) ---
MLS=$(pkgfiles mls mls)
OUT=$(otherfiles mls mls)
MLS_RENAMES=(
	'MLSMessage Message'
	'NewMLSMessage NewMessage'
	'UnmarshalMLSMessage UnmarshalMessage'
	# wire structures only the engine encodes (RFC 9420 §6.1, §6.3)
	'PrivateMessageContent privateMessageContent'
	'UnmarshalPrivateMessageContent unmarshalPrivateMessageContent'
	'SenderData senderDataPlain'
	'SenderDataAAD senderDataAAD'
	'PrivateContentAAD privateContentAAD'
	'DecryptSenderData decryptSenderData'
	'BuildWelcome newWelcome'
	'WelcomeRecipient welcomeRecipient'
)
for p in "${MLS_RENAMES[@]}"; do
	set -- $p
	rw "$1 -> $2" $MLS
	rw "mls.$1 -> mls.$2" $OUT
	# doc comments and doc links
	sed -i -E "s/\bmls\.$1\b/mls.$2/g" $OUT
done
sed -i -E 's/\[MLSMessage\]/[Message]/g' $MLS
# Doc comments in package mls name the Go identifier (MLSMessage alone is
# also the RFC's struct name and stays in prose).
for p in "${MLS_RENAMES[@]}"; do
	set -- $p
	sed -i -E "s#^(\s*)// $1\b#\1// $2#" $MLS
	case $1 in MLSMessage | SenderData | SenderDataAAD | PrivateContentAAD | PrivateMessageContent) continue ;; esac
	sed -i -E "/^\s*\/\//s/\b$1\b/$2/g" $MLS
done

# --- 3. protocol vocabulary: only in mls/tree and mls/schedule, no aliases in mls ---
# The alias declarations go (mls/keypackage.go, mls/proposal.go); the one
# extension type mls defined itself joins the others in mls/tree.
perl -0pi -e 's{// Re-exports of the tree-level types that appear throughout package mls\.\ntype \(\n(\t\w+\s*= tree\.\w+\n)+\)\n\n// ProtocolVersionMLS10 is the only version defined by RFC 9420\.\nconst ProtocolVersionMLS10 = tree\.ProtocolVersionMLS10\n\n}{}' mls/keypackage.go
perl -0pi -e 's{// ProposalType identifies a proposal \(RFC 9420 §12\.1, §17\.4\)\.\ntype ProposalType = tree\.ProposalType\n\n// Proposal types defined by RFC 9420 §17\.4\.\nconst \(\n(\t\w+\s*= tree\.\w+\n)+\)\n\n}{}' mls/proposal.go
perl -0pi -e 's{// PreSharedKeyID identifies a PSK \(RFC 9420 §8\.4\); defined in package schedule\.\ntype PreSharedKeyID = schedule\.PreSharedKeyID\n\n}{}' mls/proposal.go
if grep -q '^const ExtensionTypeLastResort ExtensionType' mls/keypackage_ops.go; then
	lr=$(perl -0ne 'print $1 if m{(// ExtensionTypeLastResort marks.*?\nconst ExtensionTypeLastResort ExtensionType = 0x000a\n)}s' mls/keypackage_ops.go)
	perl -0pi -e 's{// ExtensionTypeLastResort marks.*?\nconst ExtensionTypeLastResort ExtensionType = 0x000a\n\n}{}s' mls/keypackage_ops.go
	printf '\n%s' "$lr" >>mls/tree/extension.go
fi
sed -i 's#^// package mls re-exports it (tree.ProposalType is an alias)\.$#// package mls uses it from here (one home for the vocabulary).#' mls/tree/node.go
VOCAB_TREE=(Extension Extensions ExtensionType ExtensionTypeLastResort HPKECiphertext ProtocolVersion ProtocolVersionMLS10
	ProposalType ProposalTypeAdd ProposalTypeUpdate ProposalTypeRemove ProposalTypePSK ProposalTypeReInit
	ProposalTypeExternalInit ProposalTypeGroupContextExtensions)
for id in "${VOCAB_TREE[@]}"; do
	rw "$id -> tree.$id" $MLS
	rw "mls.$id -> tree.$id" $OUT
	sed -i -E "s/\bmls\.$id\b/tree.$id/g" $OUT
done
rw 'PreSharedKeyID -> schedule.PreSharedKeyID' $MLS
rw 'mls.PreSharedKeyID -> schedule.PreSharedKeyID' $OUT
sed -i -E 's/\bmls\.PreSharedKeyID\b/schedule.PreSharedKeyID/g' $OUT
# gofmt -r also rewrites a struct-literal key that has the same name as a
# type (Extension{ExtensionType: ...}, Proposal{ProposalType: ...}): undo
# that (a type-switch case keeps its qualifier).
sed -i -E '/^\s*case /!s/\b(tree|schedule)\.(Extension|Extensions|ExtensionType|HPKECiphertext|ProtocolVersion|ProposalType|PreSharedKeyID):/\2:/g' $MLS $OUT

# --- 4. stutter in mls/tree ---
TREE=$(pkgfiles mls/tree tree)
OUT_TREE=$(otherfiles mls/tree tree)
for p in 'NewTree New' 'NewTreeWithLeaf NewWithLeaf'; do
	set -- $p
	rw "$1 -> $2" $TREE
	rw "tree.$1 -> tree.$2" $OUT_TREE
	sed -i -E "s/\btree\.$1\b/tree.$2/g" $OUT_TREE
done

# --- 5. primitives only the engine's tools use: unexported, reached through
# mls.Internals(access.Key{}) under mls/ (needs apishrink's mls/internals.go) ---
if [ -f mls/internals.go ]; then
	MLS_NOACC=$(grep -L '^func (internals)' $MLS || true)
	for id in ProtectPrivate UnprotectPrivate SetConfirmationTag VerifyConfirmationTag DecryptGroupSecrets DecryptGroupInfo; do
		low=$(echo "${id:0:1}" | tr 'A-Z' 'a-z')${id:1}
		rw "$id -> $low" $MLS_NOACC
		sed -i -E "/^\s*\/\//s/\b$id\b/$low/g" $MLS_NOACC
		rw "mls.$id -> mls.Internals(access.Key{}).$id" $OUT
	done
fi

# --- 6. imports: add mls/tree, mls/schedule where now used, drop mls where no longer used ---
addimport() { # addimport FILE PATH: next to the module's other imports
	if grep -q "^\s*\"$M/" "$1"; then
		sed -i "0,\\#^\(\s*\)\"$M/#s##\1\"$2\"\n&#" "$1"
	elif grep -q "^import ($" "$1"; then
		sed -i "0,/^import ($/s##import (\n\t\"$2\"#" "$1"
	else
		sed -i "0,/^import /s##import \"$2\"\nimport #" "$1"
	fi
}
for f in $(find . -name '*.go' -not -path './.git/*' -not -path './node_modules/*'); do
	dir=$(dirname "$f")
	for pkg in tree schedule internal/access; do
		[ "$dir" = "./mls/$pkg" ] && continue
		if grep -v '^\s*//' "$f" | grep -E "\b${pkg##*/}\.[A-Z]" >/dev/null && ! grep -q "\"$M/mls/$pkg\"" "$f"; then
			addimport "$f" "$M/mls/$pkg"
			gofmt -w "$f"
		fi
	done
	for pkg in mls mls/tree mls/schedule; do
		name=${pkg##*/}
		if grep -q "^\s*\"$M/$pkg\"$" "$f" && ! grep -v '^\s*//' "$f" | grep -E "\b$name\.[A-Za-z]" >/dev/null; then
			sed -i "\#^\s*\"$M/$pkg\"\$#d" "$f"
			gofmt -w "$f"
		fi
	done
done
echo "apishrink-rename: done; now run: go build ./... && go vet ./..." >&2
