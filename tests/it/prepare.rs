//! `charrnn prepare`: Stack Exchange Posts.xml (in the dump's real format) and
//! source trees to training text.

use std::sync::atomic::AtomicBool;

use crate::common::{charrnn, stderr, write};
use charrnn::io::prepare::stackexchange::{self, Filter};

/// A Posts.xml shaped like a real dump: one `<row/>` per post with the dump's
/// attributes, bodies HTML escaped into attributes, newlines as `&#xA;`, an
/// answer to question 1 listed after question 2, and a tag wiki row.
const POSTS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<posts>
  <row Id="1" PostTypeId="1" AcceptedAnswerId="3" CreationDate="2014-05-13T23:58:30.457" Score="9" ViewCount="1069" Body="&lt;p&gt;How do I read a file &amp;amp; print it?&lt;/p&gt;&#xA;&#xA;&lt;pre&gt;&lt;code&gt;fn main() {&#xA;    let x = 1 &amp;lt; 2;&#xA;}&#xA;&lt;/code&gt;&lt;/pre&gt;&#xA;" OwnerUserId="5" LastActivityDate="2014-05-14T00:36:31.077" Title="Reading files in &lt;b&gt;Rust&lt;/b&gt;" Tags="&lt;rust&gt;&lt;io&gt;" AnswerCount="2" CommentCount="1" ContentLicense="CC BY-SA 3.0" />
  <row Id="2" PostTypeId="1" CreationDate="2014-05-14T00:11:06.457" Score="-2" ViewCount="10" Body="&lt;p&gt;Is Python slow?&lt;/p&gt;&#xA;" OwnerUserId="7" Title="Python speed" Tags="|python|performance|" AnswerCount="1" CommentCount="0" ContentLicense="CC BY-SA 3.0" />
  <row Id="3" PostTypeId="2" ParentId="1" CreationDate="2014-05-14T00:36:31.077" Score="5" Body="&lt;p&gt;Use &lt;code&gt;std::fs::read_to_string&lt;/code&gt;.&lt;/p&gt;&#xA;" OwnerUserId="9" LastActivityDate="2014-05-14T00:36:31.077" CommentCount="0" ContentLicense="CC BY-SA 3.0" />
  <row Id="4" PostTypeId="2" ParentId="2" CreationDate="2014-05-14T01:00:00.000" Score="1" Body="&lt;p&gt;It depends.&lt;/p&gt;" OwnerUserId="11" CommentCount="0" ContentLicense="CC BY-SA 3.0" />
  <row Id="5" PostTypeId="2" ParentId="1" CreationDate="2014-05-15T10:00:00.000" Score="0" Body="&lt;ul&gt;&lt;li&gt;open it&lt;/li&gt;&lt;li&gt;read it&lt;/li&gt;&lt;/ul&gt;" OwnerUserId="12" CommentCount="0" ContentLicense="CC BY-SA 3.0" />
  <row Id="6" PostTypeId="5" CreationDate="2014-05-16T10:00:00.000" Score="0" Body="&lt;p&gt;Tag wiki&lt;/p&gt;" ContentLicense="CC BY-SA 3.0" />
</posts>
"#;

const Q1: &str =
    "Reading files in Rust\nHow do I read a file & print it?\nfn main() {\n    let x = 1 < 2;\n}";
const A3: &str = "Use std::fs::read_to_string.";
const A5: &str = "- open it\n- read it";
const Q2: &str = "Python speed\nIs Python slow?";
const A4: &str = "It depends.";

fn run(dir: &std::path::Path, extra: &[&str]) -> (String, String) {
    let out = charrnn(dir)
        .args([
            "prepare",
            "stackexchange",
            "Posts.xml",
            "-o",
            "out.txt",
            "--force",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (
        std::fs::read_to_string(dir.join("out.txt")).unwrap(),
        stderr(&out),
    )
}

#[test]
fn questions_then_their_answers_as_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Posts.xml", POSTS);
    let (text, log) = run(dir.path(), &[]);
    assert_eq!(text, format!("{Q1}\n\n{A3}\n\n{A5}\n\n{Q2}\n\n{A4}\n"));
    assert!(log.contains("2 questions, 3 answers from 6 rows"), "{log}");
    assert!(log.contains("1 other rows"), "{log}");
}

#[test]
fn filters_by_score_tags_and_count() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Posts.xml", POSTS);
    assert_eq!(
        run(dir.path(), &["--min-score", "1"]).0,
        format!("{Q1}\n\n{A3}\n")
    );
    assert_eq!(
        run(dir.path(), &["--min-score", "-5"]).0,
        format!("{Q1}\n\n{A3}\n\n{A5}\n\n{Q2}\n\n{A4}\n")
    );
    // both tag notations: <rust><io> and |python|performance|
    assert_eq!(
        run(dir.path(), &["--tags", "Python,go"]).0,
        format!("{Q2}\n\n{A4}\n")
    );
    assert_eq!(
        run(dir.path(), &["--tags", "io"]).0,
        format!("{Q1}\n\n{A3}\n\n{A5}\n")
    );
    let (text, log) = run(dir.path(), &["--max-posts", "1"]);
    assert_eq!(text, format!("{Q1}\n\n{A3}\n\n{A5}\n"));
    assert!(log.contains("left out 1 questions and 1 answers"), "{log}");
    let (text, log) = run(dir.path(), &["--tags", "haskell"]);
    assert_eq!(text, "");
    assert!(log.contains("no question passed the filters"), "{log}");
}

#[test]
fn spilling_to_temp_files_gives_the_same_text() {
    let dir = tempfile::tempdir().unwrap();
    // many questions whose answers come much later, in reverse order
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n");
    let n = 60;
    for q in 1..=n {
        xml += &format!(
            "  <row Id=\"{q}\" PostTypeId=\"1\" Score=\"1\" Title=\"Question {q}\" Body=\"&lt;p&gt;body {q}&lt;/p&gt;\" Tags=\"&lt;t&gt;\" />\n"
        );
    }
    for (i, q) in (1..=n).rev().enumerate() {
        for k in 0..2 {
            let id = 1000 + 2 * i + k;
            xml += &format!(
                "  <row Id=\"{id}\" PostTypeId=\"2\" ParentId=\"{q}\" Score=\"0\" Body=\"answer {id} to {q}\" />\n"
            );
        }
    }
    xml += "</posts>\n";
    let posts = write(dir.path(), "Posts.xml", &xml);
    let stop = AtomicBool::new(false);
    let mut in_memory = Vec::new();
    let s1 = stackexchange::prepare(
        &posts,
        &mut in_memory,
        &Filter::default(),
        dir.path(),
        1 << 30,
        &|_| {},
        &stop,
    )
    .unwrap();
    let mut spilled = Vec::new();
    let s2 = stackexchange::prepare(
        &posts,
        &mut spilled,
        &Filter::default(),
        dir.path(),
        200,
        &|_| {},
        &stop,
    )
    .unwrap();
    assert_eq!(s1.spills, 0);
    assert!(s2.spills > 10, "{} spills", s2.spills);
    assert_eq!(
        String::from_utf8(spilled).unwrap(),
        String::from_utf8(in_memory.clone()).unwrap()
    );
    let text = String::from_utf8(in_memory).unwrap();
    // each question is followed by its two answers, lower Id first
    let q7 = text.find("Question 7\nbody 7\n\n").unwrap();
    let expect = format!(
        "Question 7\nbody 7\n\nanswer {} to 7\n\nanswer {} to 7\n\nQuestion 8",
        1000 + 2 * (n - 7),
        1001 + 2 * (n - 7)
    );
    assert!(text[q7..].starts_with(&expect), "{}", &text[q7..q7 + 120]);
    assert_eq!(
        (s1.questions, s1.answers, s1.bytes_out),
        (n as u64, 2 * n as u64, text.len() as u64)
    );
    // the unlinked temp files left nothing behind
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("Posts.xml")]);
}

#[test]
fn malformed_xml_stops_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n  <row Id=\"1\" PostTypeId=\"1\" Title=\"a\" Body=\"b\" />\n  <row Id=\"2\" PostTypeId=\"1\" Title=\"x\" Body=\"y\" </posts>\n";
    write(dir.path(), "Posts.xml", bad);
    let out = charrnn(dir.path())
        .args(["prepare", "stackexchange", "Posts.xml", "-o", "out.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Posts.xml, line 4, column"), "{err}");
    assert!(err.contains("malformed XML"), "{err}");
    assert!(
        !dir.path().join("out.txt").exists(),
        "no half-written output"
    );

    let mismatched = "<posts>\n<row Id=\"1\" PostTypeId=\"1\" Title=\"a\" Body=\"b\">\n</posts>\n";
    write(dir.path(), "Posts.xml", mismatched);
    let err = stderr(
        &charrnn(dir.path())
            .args(["prepare", "stackexchange", "Posts.xml", "-o", "out.txt"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("line 3, column"), "{err}");

    let entity =
        "<posts>\n\n<row Id=\"1\" PostTypeId=\"1\" Title=\"a &nbsp; b\" Body=\"b\" />\n</posts>\n";
    write(dir.path(), "Posts.xml", entity);
    let err = stderr(
        &charrnn(dir.path())
            .args(["prepare", "stackexchange", "Posts.xml", "-o", "out.txt"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("line 3, column 1: attribute Title"), "{err}");

    let no_id = "<posts>\n<row PostTypeId=\"1\" Title=\"a\" Body=\"b\" />\n</posts>\n";
    write(dir.path(), "Posts.xml", no_id);
    let err = stderr(
        &charrnn(dir.path())
            .args(["prepare", "stackexchange", "Posts.xml", "-o", "out.txt"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("line 2, column 1: row without an Id attribute"),
        "{err}"
    );
}

#[test]
fn refuses_to_overwrite_and_reports_a_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Posts.xml", POSTS);
    write(dir.path(), "out.txt", "precious");
    let out = charrnn(dir.path())
        .args(["prepare", "stackexchange", "Posts.xml", "-o", "out.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("out.txt already exists; replace it with --force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "precious"
    );
    // a temp file a killed prepare left behind is cleaned up by the next one
    write(dir.path(), ".clean.txt.tmp-4000000000", "half an output");
    let out = charrnn(dir.path())
        .args(["prepare", "stackexchange", "Posts.xml", "-o", "clean.txt"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed 1 temp file(s) left by an earlier prepare"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join(".clean.txt.tmp-4000000000").exists());
    let out = charrnn(dir.path())
        .args(["prepare", "stackexchange", "nope.xml", "-o", "new.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot read nope.xml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn source_tree_concatenates_text_files_and_counts_what_it_skips() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    write(&tree, "b.rs", "fn b() {}\n");
    write(&tree, "a.py", "print('a')"); // no final newline
    write(&tree.join("sub"), "c.RS", "// c\n");
    write(&tree.join(".git"), "x.rs", "hidden\n");
    write(&tree, "blob.rs", b"\x7fELF\x00\x01");
    write(&tree, "latin1.rs", b"// caf\xe9\n");
    write(&tree, "notes.md", "# notes\n");
    let out = charrnn(dir.path())
        .args([
            "prepare",
            "files",
            "tree",
            "--ext",
            "rs,.py",
            "-o",
            "tree/out.rs",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(tree.join("out.rs")).unwrap();
    assert_eq!(text, "print('a')\nfn b() {}\n// c\n");
    let log = stderr(&out);
    assert!(
        log.contains(
            "from 3 files; skipped 1 binary, 1 not UTF-8, 0 unreadable, 1 with other extensions"
        ),
        "{log}"
    );

    // run again over the same tree: the earlier output is not read back in
    let out = charrnn(dir.path())
        .args([
            "prepare",
            "files",
            "tree",
            "--ext",
            "rs,py",
            "-o",
            "tree/out.rs",
            "--force",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(tree.join("out.rs")).unwrap(), text);

    let out = charrnn(dir.path())
        .args(["prepare", "files", "tree/b.rs", "-o", "x.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
}

#[test]
fn ctrl_c_stops_without_leaving_an_output_or_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n");
    let body = "&lt;p&gt;".to_string() + &"some words in a paragraph ".repeat(40) + "&lt;/p&gt;";
    for q in 1..=60_000 {
        xml += &format!(
            "  <row Id=\"{q}\" PostTypeId=\"1\" Score=\"1\" Title=\"Question {q}\" Body=\"{body}\" />\n"
        );
    }
    xml += "</posts>\n";
    write(dir.path(), "Posts.xml", &xml);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_charrnn"))
        .current_dir(dir.path())
        .args([
            "prepare",
            "stackexchange",
            "Posts.xml",
            "-o",
            "out.txt",
            "--sort-memory",
            "1",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("interrupted; out.txt was not written"),
        "{}",
        stderr(&out)
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("Posts.xml")]);
}

/// The forms a dump comes in: plain, gzip, bzip2, xz and zstd of Posts.xml, and
/// the site's .7z (Posts.xml beside the dump's other files). Each is told by its
/// first bytes (the files here have no telling extension) and gives the text
/// the plain Posts.xml gives.
fn published_forms(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    use std::io::Write;
    let xml = POSTS.as_bytes();
    let mut forms = vec![("plain", "posts-plain".to_string())];
    write(dir, "posts-plain", xml);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(xml).unwrap();
    write(dir, "posts-gz", gz.finish().unwrap());
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz.write_all(xml).unwrap();
    write(dir, "posts-bz", bz.finish().unwrap());
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(xml).unwrap();
    write(dir, "posts-xz", xz.finish().unwrap());
    write(
        dir,
        "posts-zst",
        ruzstd::encoding::compress_to_vec(xml, ruzstd::encoding::CompressionLevel::Fastest),
    );
    let mut seven = sevenz_rust2::ArchiveWriter::create(dir.join("site-7z")).unwrap();
    for (name, content) in [
        ("Badges.xml", &b"<?xml version=\"1.0\"?>\n<badges />\n"[..]),
        ("Posts.xml", xml),
    ] {
        seven
            .push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(name), Some(content))
            .unwrap();
    }
    seven.finish().unwrap();
    for (form, file) in [
        ("gzip", "posts-gz"),
        ("bzip2", "posts-bz"),
        ("xz", "posts-xz"),
        ("zstd", "posts-zst"),
        ("7z", "site-7z"),
    ] {
        forms.push((form, file.to_string()));
    }
    forms
}

#[test]
fn a_dump_is_read_as_published_plain_compressed_or_in_its_7z() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let want = format!("{Q1}\n\n{A3}\n\n{A5}\n\n{Q2}\n\n{A4}\n");
    for (form, file) in published_forms(d) {
        let out = charrnn(d)
            .args([
                "prepare",
                "stackexchange",
                &file,
                "-o",
                "out.txt",
                "--force",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{form}: {}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(d.join("out.txt")).unwrap(),
            want,
            "{form}"
        );
        assert!(
            stderr(&out).contains("2 questions, 3 answers from 6 rows"),
            "{form}: {}",
            stderr(&out)
        );
    }
}

/// What is not a Posts.xml, or an archive of one, is an error that says what
/// it looks like (a plain text file once "succeeded" with an empty output).
#[test]
fn a_file_that_is_not_a_dump_says_what_it_looks_like() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "notes.txt",
        "Hello, these are my notes.\nNothing to see.\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"Hello, these are my notes.\n").unwrap();
    write(d, "notes.gz", gz.finish().unwrap());
    write(
        d,
        "posts.zip",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest of a zip",
    );
    let mut seven = sevenz_rust2::ArchiveWriter::create(d.join("other.7z")).unwrap();
    seven
        .push_archive_entry(
            sevenz_rust2::ArchiveEntry::new_file("readme.txt"),
            Some(&b"hello"[..]),
        )
        .unwrap();
    seven.finish().unwrap();
    write(d, "empty.xml", "");
    for (file, looks) in [
        (
            "notes.txt",
            "it is plain text, starting \"Hello, these are my notes.\\nNothing to se\"",
        ),
        (
            "notes.gz",
            "it is plain text, starting \"Hello, these are my notes.\\n\" inside the gzip stream",
        ),
        ("posts.zip", "it is a zip archive"),
        (
            "other.7z",
            "it is a 7z archive without a Posts.xml (it holds readme.txt)",
        ),
        ("empty.xml", "it is empty"),
    ] {
        let out = charrnn(d)
            .args(["prepare", "stackexchange", file, "-o", "out.txt"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{file}: {err}");
        assert!(
            err.contains(&format!(
                "{file} is not a Stack Exchange Posts.xml: {looks}"
            )),
            "{file}: {err}"
        );
        assert!(!d.join("out.txt").exists(), "{file}: no output");
    }
}

/// A malformed row inside a compressed dump is reported at its line and column
/// in the decompressed Posts.xml, and the progress counts the file's bytes.
#[test]
fn errors_inside_a_compressed_dump_name_the_line_and_the_progress_counts_compressed_bytes() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = POSTS.replace(
        r#"<row Id="4" PostTypeId="2""#,
        r#"<row Id="4" PostTypeId="2" Score=oops"#,
    );
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(bad.as_bytes()).unwrap();
    write(d, "bad.xz", xz.finish().unwrap());
    let out = charrnn(d)
        .args(["prepare", "stackexchange", "bad.xz", "-o", "out.txt"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.xz, line 6, column"), "{err}");

    let forms = published_forms(d);
    let (_, gz) = forms.iter().find(|f| f.0 == "gzip").unwrap();
    let size = std::fs::metadata(d.join(gz)).unwrap().len();
    let seen = std::sync::Mutex::new(0u64);
    let mut out = Vec::new();
    let stop = AtomicBool::new(false);
    stackexchange::prepare(
        &d.join(gz),
        &mut out,
        &Filter::default(),
        d,
        1 << 20,
        &|b| *seen.lock().unwrap() = b,
        &stop,
    )
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        size,
        "the last progress is the compressed file's size"
    );
}
