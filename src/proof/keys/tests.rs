use super::*;
use proptest::prelude::*;

// The key pair of golang.org/x/mod/sumdb/note's tests (sumdb/note/note_test.go, Copyright
// 2019 The Go Authors, BSD-3-Clause): the reference implementation's own vectors.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";

#[test]
fn the_go_key_pair_reads_and_its_key_hash_is_reproduced() {
    let s = SigningKey::parse(PETER_SKEY).unwrap();
    assert_eq!(s.name(), "PeterNeumann");
    assert_eq!(s.key_hash(), 0xc74f20a3);
    assert_eq!(s.to_private_text(), PETER_SKEY);
    assert_eq!(s.verifier().to_string(), PETER_VKEY);

    let v = VerifierKey::parse(PETER_VKEY).unwrap();
    assert_eq!(v, s.verifier());
    assert_eq!(key_hash("PeterNeumann", &v.public_key()), 0xc74f20a3);

    let e = VerifierKey::parse(ENOCH_VKEY).unwrap();
    assert_eq!(e.name(), "EnochRoot");
    assert_eq!(key_hash("EnochRoot", &e.public_key()), 0xaf0cfe78);
    assert_eq!(e.to_string(), ENOCH_VKEY);
}

/// The manglings TestNewVerifier and TestNewSigner try: every proper substring and every
/// one-byte increment must be refused.
#[test]
fn every_mangling_of_the_go_keys_is_refused() {
    for (key, parse) in [
        (
            PETER_VKEY,
            (|t: &str| VerifierKey::parse(t).is_ok()) as fn(&str) -> bool,
        ),
        (PETER_SKEY, |t: &str| SigningKey::parse(t).is_ok()),
    ] {
        let b = key.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    let t = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(!parse(t), "{t:?} accepted");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] += 1;
            let t = String::from_utf8(m).unwrap();
            assert!(!parse(&t), "{t:?} accepted");
        }
    }
    // Wrong key length and unknown algorithm, each with a key hash made to match.
    assert!(matches!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(KeyError::Malformed { .. })
    ));
    assert!(matches!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(KeyError::UnknownAlgorithm(_))
    ));
}

#[test]
fn a_wrong_key_hash_is_named_as_such() {
    let e = SigningKey::parse(&PETER_SKEY.replace("c74f20a3", "c74f20a4")).unwrap_err();
    assert!(matches!(
        e,
        KeyError::WrongKeyHash {
            stated: 0xc74f20a4,
            computed: 0xc74f20a3,
            ..
        }
    ));
    let e = VerifierKey::parse(&PETER_VKEY.replace("Peter", "Petra")).unwrap_err();
    assert!(matches!(e, KeyError::WrongKeyHash { .. }), "{e}");
}

#[test]
fn names_follow_the_spec() {
    for good in [
        "a",
        "example.com/log42",
        "PeterNeumann",
        "ünïcode/ok",
        "a-b_c~d",
    ] {
        check_name(good).unwrap();
    }
    for bad in [
        "",
        "a+b",
        "a b",
        "a\tb",
        "a\nb",
        "a\u{a0}b",
        "a\u{3000}b",
        "a\u{1}b",
        "+",
    ] {
        assert!(check_name(bad).is_err(), "{bad:?} accepted");
        assert!(generate(bad).is_err());
    }
}

#[test]
fn a_signing_key_never_shows_its_secret_in_debug_or_errors() {
    let s = SigningKey::parse(PETER_SKEY).unwrap();
    let secret = PETER_SKEY.rsplit('+').next().unwrap();
    assert!(!format!("{s:?}").contains(secret));
    let e = SigningKey::parse(&format!("{PETER_SKEY}AA")).unwrap_err();
    assert!(!e.to_string().contains(secret), "{e}");
}

#[test]
fn generated_keys_are_fresh_and_consistent() {
    let (s1, v1) = generate("flowkeep.example/a").unwrap();
    let (s2, v2) = generate("flowkeep.example/a").unwrap();
    assert_ne!(v1.public_key(), v2.public_key());
    assert_eq!(s1.verifier(), v1);
    assert_eq!(
        SigningKey::parse(&s1.to_private_text()).unwrap().verifier(),
        v1
    );
    assert_eq!(VerifierKey::parse(&v2.to_string()).unwrap(), v2);
    let sig = s2.sign(b"hi");
    assert!(v2.verify(b"hi", &sig));
    assert!(!v1.verify(b"hi", &sig));
    assert!(!v2.verify(b"ho", &sig));
    assert!(!v2.verify(b"hi", &sig[..63]));
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn write_new_writes_both_files_and_reads_back() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("log.key");
    let (s, v) = generate("flowkeep.example/a").unwrap();
    write_new(&path, &s).unwrap();
    assert_eq!(mode(&path), 0o600);
    let pubp = d.path().join("log.key.pub");
    assert_eq!(public_path(&path), pubp);
    assert_eq!(std::fs::read_to_string(&pubp).unwrap(), format!("{v}\n"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}\n", s.to_private_text())
    );
    let (back, warning) = read_signing_key(&path).unwrap();
    assert_eq!(back.verifier(), v);
    assert_eq!(warning, None);
    assert_eq!(read_verifier_key(pubp.to_str().unwrap()).unwrap(), v);
    assert_eq!(read_verifier_key(&v.to_string()).unwrap(), v);
}

#[test]
fn write_new_refuses_to_overwrite_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("log.key");
    let (s, _) = generate("a").unwrap();
    write_new(&path, &s).unwrap();
    let before = std::fs::read(&path).unwrap();
    let e = write_new(&path, &generate("a").unwrap().0).unwrap_err();
    assert!(
        matches!(&e, KeyError::Exists { path: p } if *p == path),
        "{e}"
    );
    assert!(e.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // A stray PATH.pub: refused too, and no signing key left behind without its verifier.
    let other = d.path().join("other.key");
    std::fs::write(public_path(&other), "x").unwrap();
    let e = write_new(&other, &s).unwrap_err();
    assert!(matches!(&e, KeyError::Exists { path: p } if *p == public_path(&other)));
    assert!(!other.exists());
}

#[test]
fn write_new_into_a_missing_directory_names_it() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("no/such/dir/log.key");
    let e = write_new(&path, &generate("a").unwrap().0).unwrap_err();
    assert!(
        matches!(&e, KeyError::Io { path: p, .. } if *p == path),
        "{e}"
    );
}

#[test]
fn a_key_file_others_can_read_gives_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("k");
    write_new(&path, &generate("a").unwrap().0).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (_, warning) = read_signing_key(&path).unwrap();
    let w = warning.unwrap();
    assert!(
        w.contains(&path.display().to_string()) && w.contains("0640"),
        "{w}"
    );
}

#[test]
fn bad_key_files_are_errors_naming_the_file() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing");
    let e = read_signing_key(&missing).unwrap_err();
    assert!(
        matches!(&e, KeyError::Io { path, .. } if *path == missing),
        "{e}"
    );
    assert!(read_verifier_key(missing.to_str().unwrap()).is_err());

    let cases: [(&str, &[u8]); 6] = [
        ("empty", b""),
        ("verifier", PETER_VKEY.as_bytes()),
        ("binary", b"\xff\xfe\0"),
        ("two-lines", b"PRIVATE+KEY+a+00000000+AA==\nmore\n"),
        (
            "hash",
            b"PRIVATE+KEY+PeterNeumann+00000000+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz\n",
        ),
        ("huge", &[b'A'; 10_000]),
    ];
    for (name, bytes) in cases {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = read_signing_key(&p).unwrap_err();
        assert!(
            matches!(&e, KeyError::InFile { path, .. } if *path == p),
            "{name}: {e}"
        );
        assert!(e.to_string().starts_with(&p.display().to_string()));
        // (A verifier key file is what read_verifier_key is for.)
        assert_eq!(
            read_verifier_key(p.to_str().unwrap()).is_ok(),
            name == "verifier"
        );
    }
    let e = read_signing_key(d.path()).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    // The Go test's private key file, as written by hand with a newline: reads.
    let p = d.path().join("peter");
    std::fs::write(&p, format!("{PETER_SKEY}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(read_signing_key(&p).unwrap().0.key_hash(), 0xc74f20a3);
}

#[test]
fn a_missing_file_that_looks_like_a_key_reports_the_parse_error() {
    let e = read_verifier_key(&PETER_VKEY.replace("c74f", "0000")).unwrap_err();
    assert!(matches!(e, KeyError::WrongKeyHash { .. }), "{e}");
}

proptest! {
    #[test]
    fn key_parsing_never_panics(text in ".{0,120}", bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
        let _ = SigningKey::parse(&text);
        let _ = VerifierKey::parse(&text);
        let _ = SigningKey::parse(&format!("PRIVATE+KEY+{text}"));
        let b64 = BASE64.encode(&bytes);
        let _ = SigningKey::parse(&format!("PRIVATE+KEY+n+c74f20a3+{b64}"));
        let _ = VerifierKey::parse(&format!("n+c74f20a3+{b64}"));
    }

    #[test]
    fn keys_round_trip(seed in any::<[u8; 32]>(), name in "[a-z0-9./_-]{1,30}") {
        let s = SigningKey::from_seed(&name, &seed).unwrap();
        let back = SigningKey::parse(&s.to_private_text()).unwrap();
        prop_assert_eq!(back.verifier(), s.verifier());
        prop_assert_eq!(VerifierKey::parse(&s.verifier().to_string()).unwrap(), s.verifier());
    }
}
