use super::*;
use crate::proof::keys::generate;
use proptest::prelude::*;
use sha2::{Digest, Sha256};

// The vectors of golang.org/x/mod/sumdb/note's tests (sumdb/note/note_test.go, TestSign and
// TestOpen; Copyright 2019 The Go Authors, BSD-3-Clause). Ed25519 is deterministic, so signing
// their text with their key must give their signature line byte for byte.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> (SigningKey, VerifierKey) {
    (
        SigningKey::parse(PETER_SKEY).unwrap(),
        VerifierKey::parse(PETER_VKEY).unwrap(),
    )
}

fn enoch() -> VerifierKey {
    VerifierKey::parse(ENOCH_VKEY).unwrap()
}

#[test]
fn signing_the_go_text_gives_the_go_signature_line() {
    let (s, _) = peter();
    assert_eq!(sign(TEXT, &s), format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn the_go_notes_verify_as_go_verifies_them() {
    let (_, peter) = peter();
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    // Each key finds its own signature and skips the other's.
    assert_eq!(verify(&both, &peter).unwrap(), TEXT);
    assert_eq!(verify(&both, &enoch()).unwrap(), TEXT);
    // Neither signature is by a third key.
    let (_, other) = generate("PeterNeumann").unwrap();
    assert!(matches!(
        verify(&both, &other),
        Err(NoteError::NoSignature { .. })
    ));
    // Repeated signatures, known and unknown, and a corrupt one by an unknown key.
    let enoch_abcd = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let repeated = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_abcd}");
    assert_eq!(verify(&repeated, &peter).unwrap(), TEXT);
    // The same corruption by the known key: an invalid signature, which rejects the note.
    let peter_abcd = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        verify(&format!("{TEXT}\n{peter_abcd}"), &peter),
        Err(NoteError::BadSignature {
            name: "PeterNeumann".into(),
            hash: 0xc74f20a3
        })
    );
    assert!(matches!(
        verify(&repeated, &enoch()),
        Err(NoteError::BadSignature { .. })
    ));
    // 101 signatures: too many.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert_eq!(
        verify(&many, &peter),
        Err(NoteError::Malformed("too many signatures"))
    );
    // Another name, or another key ID: not this key's signature.
    let misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
    let wrong_hash = PETER_SIG.replace("x08g", "xxxx");
    for sig in [misnamed, wrong_hash] {
        assert!(matches!(
            verify(&format!("{TEXT}\n{sig}"), &peter),
            Err(NoteError::NoSignature { .. })
        ));
    }
}

#[test]
fn the_go_malformed_notes_are_malformed() {
    let (_, peter) = peter();
    let bad = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\u{1}{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ];
    for note in bad {
        assert!(
            matches!(verify(&note, &peter), Err(NoteError::Malformed(_))),
            "{note:?}"
        );
    }
    // ("\xff" + text, the Go test's invalid UTF-8, cannot be a &str: the type refuses it.)
}

#[test]
fn the_go_tree_body_is_reproduced() {
    // golang.org/x/mod/sumdb/tlog/note_test.go (TestFormatTree, TestParseTree; BSD-3-Clause):
    // the tree hash there is RFC 6962's leaf hash of "hello world".
    let root: [u8; 32] = Sha256::new()
        .chain_update([0u8])
        .chain_update(b"hello world")
        .finalize()
        .into();
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let c = Checkpoint {
        origin: "go.sum database tree".into(),
        size: 123456789012,
        root,
        extensions: vec![],
    };
    assert_eq!(c.to_note_body(), golden);
    assert_eq!(Checkpoint::parse(golden).unwrap(), c);
    for bad in [
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n",
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n",
    ] {
        assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
    }
}

fn checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "flowkeep.example/store-a".into(),
        size: 1234,
        root: [7; 32],
        extensions: vec![],
    }
}

#[test]
fn checkpoint_bodies_are_read_strictly() {
    let root = BASE64.encode([7u8; 32]);
    let ok = |size: &str, rest: &str| format!("o\n{size}\n{root}\n{rest}");
    assert_eq!(Checkpoint::parse(&ok("0", "")).unwrap().size, 0);
    assert_eq!(
        Checkpoint::parse(&ok("18446744073709551615", ""))
            .unwrap()
            .size,
        u64::MAX
    );
    let c = Checkpoint::parse(&ok("5", "ext one\nx\n")).unwrap();
    assert_eq!(c.extensions, ["ext one", "x"]);
    assert_eq!(Checkpoint::parse(&c.to_note_body()).unwrap(), c);

    let short = BASE64.encode([7u8; 31]);
    let long = BASE64.encode([7u8; 33]);
    let bad = [
        ok("01", ""),
        ok("00", ""),
        ok("+5", ""),
        ok("-5", ""),
        ok(" 5", ""),
        ok("5 ", ""),
        ok("", ""),
        ok("١٢", ""),
        ok("18446744073709551616", ""),
        ok("5", "\n"),
        ok("5", "a\n\nb\n"),
        ok("5", "a\r\n"),
        format!("o\n5\n{root}"),
        format!("o\n5\n{root}\next"),
        format!("\n5\n{root}\n"),
        format!("o\n5\n{short}\n"),
        format!("o\n5\n{long}\n"),
        // Missing padding, and the right length with a non-zero trailing bit: one encoding.
        format!("o\n5\n{}\n", root.trim_end_matches('=')),
        format!("o\n5\n{}H=\n", &root[..root.len() - 2]),
        "o\n5\n".to_string(),
        String::new(),
    ];
    for b in bad {
        assert!(
            matches!(Checkpoint::parse(&b), Err(NoteError::Checkpoint(_))),
            "{b:?}"
        );
    }
}

#[test]
fn check_finds_what_would_not_read_back() {
    checkpoint().check().unwrap();
    for origin in ["", "a\nb", "a\rb"] {
        let c = Checkpoint {
            origin: origin.into(),
            ..checkpoint()
        };
        assert!(c.check().is_err());
        assert!(Checkpoint::parse(&c.to_note_body()).is_err());
    }
    let c = Checkpoint {
        extensions: vec![String::new()],
        ..checkpoint()
    };
    assert!(c.check().is_err());
}

#[test]
fn a_signed_checkpoint_opens_and_a_changed_one_does_not() {
    let (s, v) = generate("flowkeep.example/store-a").unwrap();
    let c = checkpoint();
    let note = c.sign(&s);
    assert!(note.starts_with(&c.to_note_body()));
    assert!(note.contains("\n\n\u{2014} flowkeep.example/store-a "));
    assert_eq!(open(&note, &v).unwrap(), c);

    let grown = note.replacen("1234", "1235", 1);
    assert!(matches!(
        open(&grown, &v),
        Err(NoteError::BadSignature { .. })
    ));
    // A witness's cosignature (another key) beside the log's is skipped.
    let (w, wv) = generate("witness.example").unwrap();
    let cosigned = format!(
        "{note}{}",
        sign(&c.to_note_body(), &w).split("\n\n").nth(1).unwrap()
    );
    assert_eq!(open(&cosigned, &v).unwrap(), c);
    assert_eq!(open(&cosigned, &wv).unwrap(), c);
    // A key of the same name but another key ID does not count as the log's.
    let (_, same_name) = generate("flowkeep.example/store-a").unwrap();
    assert!(matches!(
        open(&note, &same_name),
        Err(NoteError::NoSignature { .. })
    ));
    // A signed note whose text is no checkpoint.
    assert!(matches!(
        open(&sign("hello\n", &s), &v),
        Err(NoteError::Checkpoint(_))
    ));
}

#[test]
fn up_to_a_hundred_signatures_are_read() {
    // The spec: verifiers MUST accept at least 16.
    let (s, v) = generate("log").unwrap();
    let note = checkpoint().sign(&s);
    let other = sign(&checkpoint().to_note_body(), &generate("w").unwrap().0);
    let cosig = other.rsplit("\n\n").next().unwrap();
    assert_eq!(
        open(&format!("{note}{}", cosig.repeat(99)), &v).unwrap(),
        checkpoint()
    );
    assert_eq!(
        open(&format!("{note}{}", cosig.repeat(100)), &v),
        Err(NoteError::Malformed("too many signatures"))
    );
}

#[test]
fn appended_notes_split_into_their_pieces() {
    let (s, v) = generate("log").unwrap();
    let notes: Vec<String> = (0..3)
        .map(|i| {
            Checkpoint {
                size: i,
                ..checkpoint()
            }
            .sign(&s)
        })
        .collect();
    let file = format!("{}{}\n\n{}", notes[0], notes[1], notes[2]);
    let pieces = split_notes(&file);
    assert_eq!(pieces, [&notes[0], &notes[1], &notes[2]]);
    for (i, p) in pieces.iter().enumerate() {
        assert_eq!(open(p, &v).unwrap().size, i as u64);
    }
    // A note cut short at the end comes back, and does not open.
    let cut = format!("{file}{}", &notes[0][..20]);
    let pieces = split_notes(&cut);
    assert_eq!(pieces.len(), 4);
    assert_eq!(pieces[3], &notes[0][..20]);
    assert!(open(pieces[3], &v).is_err());
    assert!(split_notes("").is_empty());
    assert!(split_notes("\n\n").is_empty());
    // Stray lines after a note's signatures read as the start of the next note, which then
    // does not open; at the end, they are a piece of their own.
    let stray = format!("{}junk\n{}junk\n", notes[0], notes[1]);
    let pieces = split_notes(&stray);
    assert_eq!(pieces.len(), 3);
    assert_eq!(pieces[1], format!("junk\n{}", notes[1]));
    assert!(open(pieces[1], &v).is_err());
    assert_eq!(pieces[2], "junk\n");
}

fn arb_checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        "[^\\x00-\\x1f]{1,40}",
        any::<u64>(),
        any::<[u8; 32]>(),
        proptest::collection::vec("[^\\x00-\\x1f]{1,20}", 0..3),
    )
        .prop_map(|(origin, size, root, extensions)| Checkpoint {
            origin,
            size,
            root,
            extensions,
        })
}

proptest! {
    #[test]
    fn signed_checkpoints_round_trip(c in arb_checkpoint(), seed in any::<[u8; 32]>()) {
        let s = SigningKey::from_seed("flowkeep.example/p", &seed).unwrap();
        prop_assert!(c.check().is_ok());
        let note = c.sign(&s);
        prop_assert_eq!(open(&note, &s.verifier()).unwrap(), c.clone());
        let twice = format!("{note}{note}");
        prop_assert_eq!(split_notes(&twice), vec![note.as_str(), note.as_str()]);
    }

    #[test]
    fn a_changed_character_never_opens(c in arb_checkpoint(), at in any::<prop::sample::Index>(), by in any::<char>()) {
        let (s, v) = peter();
        let note = c.sign(&s);
        let chars: Vec<char> = note.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != by);
        let mut changed = chars;
        changed[i] = by;
        let changed: String = changed.into_iter().collect();
        prop_assert!(open(&changed, &v).is_err(), "{:?}", changed);
    }

    #[test]
    fn bad_input_never_panics(text in "(?s).{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, v) = peter();
        let lossy = String::from_utf8_lossy(&bytes);
        for t in [text.as_str(), &lossy, &format!("{TEXT}\n{text}"), &format!("{text}\n\n\u{2014} PeterNeumann {}\n", BASE64.encode(&bytes))] {
            let _ = Checkpoint::parse(t);
            let _ = verify(t, &v);
            let _ = open(t, &v);
            for piece in split_notes(t) {
                prop_assert!(t.contains(piece));
                let _ = open(piece, &v);
            }
        }
    }
}
