//! Prints the held-out loss with own vs swapped latents for the latest checkpoint
//! of a recipe's run: `cargo run --release -p c3-train --example latent_gap RECIPE`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: latent_gap RECIPE.toml")?;
    let t = c3_train::Trainer::new(c3_train::Recipe::load(std::path::Path::new(&path))?)?;
    match t.latent_gap(64)? {
        Some((own, swapped)) => println!(
            "step {}: held-out loss {own:.3} with own latents, {swapped:.3} with another passage's",
            t.step()
        ),
        None => println!("fewer than two held-out passages: nothing to swap latents with"),
    }
    Ok(())
}
