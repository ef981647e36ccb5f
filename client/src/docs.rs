//! `generate-docs`: the man page (`asset-watcher.1`, clap_mangen) and shell
//! completions for bash, zsh and fish (clap_complete), rendered from the
//! same clap definitions the binary parses, for the Debian package.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Write `asset-watcher.1`, `asset-watcher.bash`, `_asset-watcher` and
/// `asset-watcher.fish` into `out` (created if needed).
pub fn generate(out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let cmd = Cli::command();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man)?;
    std::fs::write(out.join("asset-watcher.1"), man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = cmd.clone();
        clap_complete::generate_to(shell, &mut cmd, "asset-watcher", out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_man_page_and_completions() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate(dir.path()).expect("generate");
        let man = std::fs::read_to_string(dir.path().join("asset-watcher.1")).expect("man page");
        assert!(man.contains(r"check\-config"), "{man}");
        assert!(
            !man.contains(r"generate\-docs"),
            "hidden command in the man page"
        );
        for f in ["asset-watcher.bash", "_asset-watcher", "asset-watcher.fish"] {
            let text = std::fs::read_to_string(dir.path().join(f)).expect(f);
            assert!(
                text.contains("check-config") && text.contains("retry-failed"),
                "{f}"
            );
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
