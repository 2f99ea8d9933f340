//! Streamed text equals the final text: characters cut across tokens and windows,
//! windows finishing out of order, overlap and padding, whitespace at both ends.

use super::*;
use crate::WindowPlan;
use crate::window::{apply_limits, join};
use crate::{FinishReason, Generated};

/// The fixture's byte-level tokenizer: id = byte value, so every multi-byte
/// character is split across tokens.
fn tok() -> C3Tokenizer {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
    C3Tokenizer::from_dir(&dir).unwrap()
}

/// What the whole-document path gives for these windows' generations.
fn reference(tok: &C3Tokenizer, windows: &[Window], gens: &[Vec<u32>]) -> String {
    let gens: Vec<Generated> = gens
        .iter()
        .map(|ids| Generated {
            ids: ids.clone(),
            finish: FinishReason::Stop,
        })
        .collect();
    let (docs, _) = join(windows, &gens, 1).unwrap();
    tok.decode(&docs[0]).unwrap().trim().to_string()
}

/// Feeds `order` (window, token index) events, then each window's done event in
/// `done_order`; checks every piece and returns them.
fn stream(
    tok: &C3Tokenizer,
    windows: &[Window],
    gens: &[Vec<u32>],
    order: &[(usize, usize)],
    done_order: &[usize],
) -> Vec<String> {
    let want = reference(tok, windows, gens);
    let mut s = DocumentStream::new(windows.to_vec());
    let mut pieces = Vec::new();
    let check = |p: Option<String>, pieces: &mut Vec<String>| {
        if let Some(p) = p {
            assert!(!p.is_empty());
            assert!(!p.contains('\u{fffd}'), "piece {p:?} cut a character");
            pieces.push(p);
            // Pieces come in document order: what is out so far begins the text.
            assert!(want.starts_with(&pieces.concat()), "{pieces:?} vs {want:?}");
        }
    };
    for &(w, i) in order {
        let p = s.token(tok, w, gens[w][i]).unwrap();
        check(p, &mut pieces);
    }
    for &w in done_order {
        let p = s.window_done(tok, w, &gens[w]).unwrap();
        check(p, &mut pieces);
    }
    let p = s.finish(tok).unwrap();
    check(p, &mut pieces);
    assert_eq!(pieces.concat(), want);
    assert_eq!(tok.decode(s.ids()).unwrap().trim(), want);
    pieces
}

/// Every token of every window, window by window (as a batch of one row would).
fn in_order(gens: &[Vec<u32>]) -> Vec<(usize, usize)> {
    (0..gens.len())
        .flat_map(|w| (0..gens[w].len()).map(move |i| (w, i)))
        .collect()
}

/// A perfect model's generations: each window's input (pad included, cut as the
/// scheduler's limit cuts it).
fn perfect(plan: &WindowPlan, ids: &[u32]) -> (Vec<Window>, Vec<Vec<u32>>) {
    let windows = plan.split(0, ids.len());
    let mut gens: Vec<Generated> = windows
        .iter()
        .map(|w| Generated {
            ids: w.input(ids, plan.pad_id),
            finish: FinishReason::Stop,
        })
        .collect();
    apply_limits(&windows, &mut gens, None);
    (windows, gens.into_iter().map(|g| g.ids).collect())
}

#[test]
fn multibyte_characters_split_across_tokens_come_out_whole() {
    let tok = tok();
    let text = "Grüße aus Köln — 日本語のテキスト, αβγ 🦀 done.";
    let ids = tok.encode(text).unwrap();
    assert!(
        ids.len() > text.chars().count(),
        "byte-level: characters span tokens"
    );
    let plan = WindowPlan::new(Some(ids.len()), None, 1000, 0).unwrap();
    let (windows, gens) = perfect(&plan, &ids);
    let pieces = stream(&tok, &windows, &gens, &in_order(&gens), &[0]);
    // A piece per complete character: the crab's 4 bytes come out as one piece
    // (with the space held before it).
    assert!(pieces.contains(&" 🦀".to_string()), "{pieces:?}");
    assert!(pieces.len() >= text.chars().filter(|c| !c.is_whitespace()).count() / 2);
}

#[test]
fn windows_finishing_out_of_order_stream_in_document_order() {
    let tok = tok();
    // 5-byte windows cut through characters; the last window overlaps (skip > 0).
    let text = "Fenêtres: 日本語, ünïcödé; the end!";
    let ids = tok.encode(text).unwrap();
    let plan = WindowPlan::new(Some(5), None, 100, 0).unwrap();
    let (windows, gens) = perfect(&plan, &ids);
    assert!(
        windows.last().unwrap().skip > 0,
        "an overlapping last window"
    );
    let n = windows.len();
    // Round-robin tokens over all windows (a batch of rows), last windows done first.
    let mut order = Vec::new();
    for i in 0..5 {
        for (w, g) in gens.iter().enumerate().rev() {
            if i < g.len() {
                order.push((w, i));
            }
        }
    }
    let done: Vec<usize> = (0..n).rev().collect();
    stream(&tok, &windows, &gens, &order, &done);
    // Nothing before window 0 is done, and window 0 alone releases its own text.
    let mut s = DocumentStream::new(windows.clone());
    for (i, &t) in gens[n - 1].iter().enumerate() {
        assert_eq!(s.token(&tok, n - 1, t).unwrap(), None, "token {i}");
    }
    assert_eq!(s.window_done(&tok, n - 1, &gens[n - 1]).unwrap(), None);
    let first = s.window_done(&tok, 0, &gens[0]).unwrap();
    assert_eq!(first.as_deref(), Some("Fenê"));
}

#[test]
fn a_padded_window_is_cut_at_its_length_while_streaming() {
    let tok = tok();
    let ids = tok.encode("short").unwrap();
    let plan = WindowPlan::new(Some(8), Some(8), 100, b'#' as u32).unwrap();
    let windows = plan.split(0, ids.len());
    assert!(windows[0].pad > 0);
    // The model goes on past the window's tokens (into the padding): cut.
    let gens = vec![tok.encode("short###").unwrap()];
    let pieces = stream(&tok, &windows, &gens, &in_order(&gens), &[0]);
    assert_eq!(pieces.concat(), "short");
}

#[test]
fn whitespace_at_both_ends_is_trimmed_and_inner_whitespace_kept() {
    let tok = tok();
    let text = " \n\t  two  words \u{3000}and more\t \n  ";
    let ids = tok.encode(text).unwrap();
    let plan = WindowPlan::new(Some(4), None, 100, 0).unwrap();
    let (windows, gens) = perfect(&plan, &ids);
    let done: Vec<usize> = (0..windows.len()).collect();
    let pieces = stream(&tok, &windows, &gens, &in_order(&gens), &done);
    assert_eq!(pieces.concat(), "two  words \u{3000}and more");
    assert!(!pieces[0].starts_with(char::is_whitespace), "{pieces:?}");
    // Trailing whitespace is held until text follows: no piece ends in it.
    assert!(
        pieces.iter().all(|p| !p.ends_with(char::is_whitespace)),
        "{pieces:?}"
    );
    // A document of whitespace only streams nothing.
    let ids = tok.encode(" \n ").unwrap();
    let plan = WindowPlan::new(Some(10), None, 100, 0).unwrap();
    let (windows, gens) = perfect(&plan, &ids);
    assert!(stream(&tok, &windows, &gens, &in_order(&gens), &[0]).is_empty());
}

#[test]
fn undecodable_bytes_and_ids_become_u_fffd_as_in_the_whole_decode() {
    let tok = tok();
    let specials = tok.specials().endoftext;
    // A stray continuation byte mid-text, an id past the vocabulary, a special
    // token's name, and an incomplete character at the very end (flushed by finish).
    let mut ids = tok.encode("ok ").unwrap();
    ids.push(0x97);
    ids.extend(tok.encode(" then ").unwrap());
    ids.push(tok.vocab_size() as u32 + 5);
    ids.push(specials);
    ids.extend(tok.encode("x ").unwrap());
    ids.extend(
        &"日".as_bytes()[..2]
            .iter()
            .map(|&b| b as u32)
            .collect::<Vec<_>>(),
    );
    let windows = WindowPlan::new(Some(ids.len()), None, 1000, 0)
        .unwrap()
        .split(0, ids.len());
    let gens = [ids.clone()];
    let want = tok.decode(&ids).unwrap().trim().to_string();
    assert!(want.ends_with('\u{fffd}') && want.matches('\u{fffd}').count() == 3);
    let mut s = DocumentStream::new(windows);
    let mut out = String::new();
    for &t in &ids {
        out += &s.token(&tok, 0, t).unwrap().unwrap_or_default();
    }
    assert!(
        !out.ends_with('\u{fffd}'),
        "the incomplete tail is held: {out:?}"
    );
    out += &s
        .window_done(&tok, 0, &gens[0])
        .unwrap()
        .unwrap_or_default();
    out += &s.finish(&tok).unwrap().unwrap_or_default();
    assert_eq!(out, want);
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let tok = tok();
    let ids = tok.encode("abcdefgh").unwrap();
    let plan = WindowPlan::new(Some(4), None, 100, 0).unwrap();
    let (windows, gens) = perfect(&plan, &ids);
    let mut s = DocumentStream::new(windows);
    assert!(s.token(&tok, 7, 1).is_err());
    assert!(s.finish(&tok).is_err(), "windows are not done");
    s.token(&tok, 0, gens[0][0]).unwrap();
    assert!(
        s.window_done(&tok, 0, &[999]).is_err(),
        "does not continue the stream"
    );
    s.window_done(&tok, 0, &gens[0]).unwrap();
    assert!(s.token(&tok, 0, 1).is_err(), "window 0 is done");
}
