//! Window split/join: no token lost or duplicated at boundaries, overlap and
//! padding undone, UTF-8 characters cut by a boundary come back whole.

use super::*;
use crate::C3Tokenizer;

/// What a perfect model decodes from a window: its encoder input, pad included.
fn perfect(doc: &[u32], w: &Window, pad_id: u32, stop: bool) -> Generated {
    Generated {
        ids: w.input(doc, pad_id),
        finish: if stop {
            FinishReason::Stop
        } else {
            FinishReason::Length
        },
    }
}

fn roundtrip(plan: &WindowPlan, docs: &[Vec<u32>]) -> Vec<Vec<u32>> {
    let lens: Vec<usize> = docs.iter().map(Vec::len).collect();
    let windows = plan.split_all(&lens);
    let mut gens: Vec<Generated> = windows
        .iter()
        .map(|w| perfect(&docs[w.doc], w, plan.pad_id, w.pad == 0))
        .collect();
    apply_limits(&windows, &mut gens, None);
    let (out, reports) = join(&windows, &gens, docs.len()).unwrap();
    for r in &reports {
        assert!(!r.short, "{r:?}");
        assert!(matches!(r.end, WindowEnd::Stop | WindowEnd::Cut), "{r:?}");
    }
    out
}

#[test]
fn every_length_splits_and_joins_exactly() {
    for w in [1, 2, 5, 8, 40] {
        for pad_to in [None, Some(w), Some(w + 3)] {
            let plan = WindowPlan {
                window: w,
                pad_to,
                pad_id: 9999,
            };
            let docs: Vec<Vec<u32>> = (1..=130).map(|n| (0..n as u32).collect()).collect();
            assert_eq!(
                roundtrip(&plan, &docs),
                docs,
                "window {w}, pad_to {pad_to:?}"
            );
        }
    }
}

#[test]
fn windows_are_full_and_cover_the_document_once() {
    let plan = WindowPlan::new(Some(40), Some(40), 503, 0).unwrap();
    let ws = plan.split(0, 95);
    assert_eq!(ws.len(), 3);
    assert_eq!((ws[0].start, ws[1].start, ws[2].start), (0, 40, 55));
    assert!(ws.iter().all(|w| w.tokens == 40 && w.pad == 0));
    assert_eq!(ws[2].skip, 25); // tokens 55..80 were already in window 2
    let short = plan.split(0, 7);
    assert_eq!((short[0].tokens, short[0].pad), (7, 33));
    assert_eq!(short[0].max_new_tokens(None), 7);
}

#[test]
fn utf8_cut_inside_a_character_comes_back_whole() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
    let tok = C3Tokenizer::from_dir(&dir).unwrap();
    let text = "Grüße aus Köln — 日本語のテキスト, ünïcödé everywhere: αβγδε.";
    let ids = tok.encode(text).unwrap();
    // The fixture is byte-level: windows of 5 bytes cut through multi-byte characters.
    let plan = WindowPlan::new(Some(5), None, 100, tok.specials().endoftext).unwrap();
    let windows = plan.split(0, ids.len());
    assert!(windows.iter().any(|w| {
        tok.decode(&w.input(&ids, 0)[..w.tokens])
            .map_or(true, |t| t.contains('\u{fffd}'))
    }));
    let joined = roundtrip(&plan, std::slice::from_ref(&ids));
    assert_eq!(tok.decode(&joined[0]).unwrap(), text);
}

#[test]
fn early_stops_and_limits_are_reported() {
    let plan = WindowPlan::new(Some(10), None, 100, 0).unwrap();
    let ws = plan.split(0, 20);
    let gens = vec![
        Generated {
            ids: (0..4).collect(),
            finish: FinishReason::Stop,
        },
        Generated {
            ids: (10..30).collect(),
            finish: FinishReason::Length,
        },
    ];
    let (_, r) = join(&ws, &gens, 1).unwrap();
    assert!(r[0].short && r[0].end == WindowEnd::Stop);
    assert!(!r[1].short && r[1].end == WindowEnd::Limit);
}

#[test]
fn bad_windows_are_refused() {
    assert!(WindowPlan::new(Some(0), None, 100, 0).is_err());
    assert!(WindowPlan::new(Some(101), None, 100, 0).is_err());
    // No padding past the trained window, none beyond the encoder limit.
    assert_eq!(
        WindowPlan::new(Some(50), Some(40), 100, 0).unwrap().pad_to,
        None
    );
    assert_eq!(WindowPlan::new(None, Some(40), 100, 0).unwrap().window, 40);
    assert_eq!(WindowPlan::new(None, None, 100, 0).unwrap().window, 100);
}
