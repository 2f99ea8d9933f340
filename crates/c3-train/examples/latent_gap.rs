//! Prints the held-out loss with own vs swapped latents for the latest checkpoint
//! of a recipe's run: `cargo run --release -p c3-train --example latent_gap RECIPE`.
fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: latent_gap RECIPE.toml");
    let r = c3_train::Recipe::load(std::path::Path::new(&path)).unwrap();
    let t = c3_train::Trainer::new(r).unwrap();
    let (own, swapped) = t.latent_gap(64).unwrap();
    println!(
        "step {}: held-out loss {own:.3} with own latents, {swapped:.3} with another passage's",
        t.step()
    );
}
