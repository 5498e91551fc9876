//! `cuedag project init [DIR] [--name NAME] [--template NAME]`,
//! `cuedag project update` and `cuedag project info [--plan PATH]`.
//!
//! `init` creates `cue.mod/module.cue` and `cue.mod/pkg/`. `update` vendors
//! the `dagger.io` and `universe.dagger.io` packages embedded in the binary
//! into `cue.mod/pkg/`, replacing each module directory atomically (written
//! to a temporary sibling, then renamed), with `cue.mod/version.txt` in each
//! module, a `.gitattributes` marking them generated, and `dagger.lock`
//! held during the operation, as `dagger project update` did.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use miette::{miette, IntoDiagnostic as _, Result, WrapErr as _};

/// Arguments of `cuedag project`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: ProjectCommand,
}

/// Subcommands of `cuedag project`.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCommand {
    /// Create a project: `cue.mod/module.cue` and `cue.mod/pkg/`.
    Init(InitArgs),
    /// Vendor the dagger.io and universe.dagger.io packages into `cue.mod/pkg/`.
    Update(UpdateArgs),
    /// Show where the project is and which dagger packages it uses.
    Info(InfoArgs),
}

/// Arguments of `cuedag project init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory of the project (created if needed).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Module name written to `cue.mod/module.cue` (may be empty).
    #[arg(short, long, default_value = "")]
    pub name: String,
    /// Also write a starter plan from this template (`hello`).
    #[arg(short, long)]
    pub template: Option<String>,
}

/// Arguments of `cuedag project update`.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// A third-party package to install from git (not supported yet).
    pub package: Option<String>,
    /// Update the given package to its latest version.
    #[arg(short, long)]
    pub update: bool,
    /// Private key for git over SSH (third-party packages only).
    #[arg(long)]
    pub private_key_file: Option<PathBuf>,
    /// Password of the private key (third-party packages only).
    #[arg(long)]
    pub private_key_password: Option<String>,
}

/// Arguments of `cuedag project info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Path to the plan (a directory or a `.cue` file); the project is
    /// searched from there upwards.
    #[arg(short, long, default_value = ".")]
    pub plan: PathBuf,
}

/// Runs `cuedag project`.
pub fn run(args: Args) -> Result<ExitCode> {
    match args.command {
        ProjectCommand::Init(args) => init(&args),
        ProjectCommand::Update(args) => update(&args),
        ProjectCommand::Info(args) => info(&args),
    }
}

/// The one template `init --template` knows.
const HELLO_TEMPLATE: &str = r##"package hello

import (
	"dagger.io/dagger"
	"universe.dagger.io/alpine"
	"universe.dagger.io/bash"
)

dagger.#Plan & {
	actions: {
		_image: alpine.#Build & {
			packages: bash: _
		}

		// Say hello from a container
		hello: bash.#Run & {
			input: _image.output
			env: NAME: string | *"world"
			script: contents: #"""
				echo "Hello, $NAME!"
				"""#
		}
	}
}
"##;

fn init(args: &InitArgs) -> Result<ExitCode> {
    let template = match args.template.as_deref() {
        None => None,
        Some("hello") => Some(("hello.cue", HELLO_TEMPLATE)),
        Some(other) => {
            return Err(miette!(
                code = "project::unknown-template",
                help = "the templates are: hello",
                "unknown template `{other}`"
            ))
        }
    };
    let cue_mod = args.dir.join("cue.mod");
    fs::create_dir_all(cue_mod.join("pkg"))
        .into_diagnostic()
        .wrap_err_with(|| format!("creating `{}`", cue_mod.join("pkg").display()))?;
    let module_file = cue_mod.join("module.cue");
    if !module_file.exists() {
        let text = format!("module: {}\n", cue_string(&args.name));
        fs::write(&module_file, text)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing `{}`", module_file.display()))?;
    }
    if let Some((file_name, text)) = template {
        let plan_file = args.dir.join(file_name);
        if plan_file.exists() {
            return Err(miette!(
                code = "project::file-exists",
                help = "remove it or pick another directory",
                "`{}` already exists",
                plan_file.display()
            ));
        }
        fs::write(&plan_file, text)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing `{}`", plan_file.display()))?;
    }
    let message = if args.dir == Path::new(".") {
        "Project initialized! To install dagger packages, run `dagger project update`".to_owned()
    } else {
        format!(
            "Project initialized in \"{}\"! To install dagger packages, run `dagger project update` inside that directory",
            args.dir.display()
        )
    };
    say(&message)?;
    Ok(ExitCode::SUCCESS)
}

fn update(args: &UpdateArgs) -> Result<ExitCode> {
    if let Some(package) = &args.package {
        return Err(miette!(
            code = "project::third-party-packages",
            help = "vendor the package by hand under `cue.mod/pkg/`, or run `cuedag project update` without arguments for the dagger packages",
            "installing third-party package `{package}` is not supported yet"
        ));
    }
    let cwd = std::env::current_dir().into_diagnostic()?;
    let root = find_project(&cwd).ok_or_else(|| {
        miette!(
            code = "project::not-found",
            help = "run `cuedag project init` to create one here",
            "dagger project not found: no `cue.mod` in `{}` or its parents",
            cwd.display()
        )
    })?;
    let pkg_dir = root.join("cue.mod/pkg");
    fs::create_dir_all(&pkg_dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("creating `{}`", pkg_dir.display()))?;
    let lock = lock_project(&pkg_dir)?;
    for module in cuedag_universe::MODULES {
        vendor_module(&pkg_dir, module)
            .into_diagnostic()
            .wrap_err_with(|| format!("installing `{module}` into `{}`", pkg_dir.display()))?;
    }
    write_gitattributes(&pkg_dir)
        .into_diagnostic()
        .wrap_err("writing `cue.mod/pkg/.gitattributes`")?;
    drop(lock);
    say(&format!(
        "Project updated! Installed dagger.io and universe.dagger.io {} in \"{}\"",
        cuedag_universe::VERSION,
        pkg_dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn info(args: &InfoArgs) -> Result<ExitCode> {
    let start = if args.plan.is_file() {
        args.plan
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        args.plan.clone()
    };
    let start = if start.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        start
    };
    let start = fs::canonicalize(&start)
        .into_diagnostic()
        .wrap_err_with(|| format!("reading plan path `{}`", args.plan.display()))?;
    let root = find_project(&start).ok_or_else(|| {
        miette!(
            code = "project::not-found",
            help = "run `cuedag project init` to create one (plans without one use the packages embedded in cuedag)",
            "dagger project not found: no `cue.mod` in `{}` or its parents",
            start.display()
        )
    })?;
    let mut lines = vec![format!("Current dagger project in: {}", root.display())];
    let module = fs::read_to_string(root.join("cue.mod/module.cue")).unwrap_or_default();
    if let Some(name) = module
        .lines()
        .find_map(|line| line.trim().strip_prefix("module:"))
    {
        lines.push(format!("Module: {}", name.trim()));
    }
    for module in cuedag_universe::MODULES {
        let dir = root.join("cue.mod/pkg").join(module);
        let version = fs::read_to_string(dir.join("cue.mod/version.txt"));
        lines.push(match version {
            Ok(version) => format!("Package {module}: {} (vendored)", version.trim()),
            Err(_) if dir.exists() => format!("Package {module}: vendored, version unknown"),
            Err(_) => format!(
                "Package {module}: {} (embedded in cuedag)",
                cuedag_universe::VERSION
            ),
        });
    }
    say(&lines.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a result line to stdout.
fn say(message: &str) -> Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{message}").into_diagnostic()
}

/// A CUE string literal holding `text`.
fn cue_string(text: &str) -> String {
    let mut literal = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\t' => literal.push_str("\\t"),
            ch if ch.is_control() => literal.push_str(&format!("\\u{:04x}", u32::from(ch))),
            ch => literal.push(ch),
        }
    }
    literal.push('"');
    literal
}

/// The nearest directory holding `cue.mod`, from `start` upwards.
fn find_project(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("cue.mod").is_dir())
        .map(Path::to_path_buf)
}

/// Holds `cue.mod/pkg/dagger.lock` exclusively until dropped, so that two
/// updates of one project do not interleave.
fn lock_project(pkg_dir: &Path) -> Result<File> {
    let lock_path = pkg_dir.join("dagger.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .into_diagnostic()
        .wrap_err_with(|| format!("opening `{}`", lock_path.display()))?;
    file.lock()
        .into_diagnostic()
        .wrap_err_with(|| format!("locking `{}`", lock_path.display()))?;
    Ok(file)
}

/// Replaces `pkg_dir/<module>` with the embedded files of `module`.
///
/// The new tree is written next to the old one and renamed into place, so
/// the module directory is always either the old or the new tree. A module
/// directory that is a symbolic link (a developer's checkout) is left alone.
fn vendor_module(pkg_dir: &Path, module: &str) -> io::Result<()> {
    let target = pkg_dir.join(module);
    if fs::symlink_metadata(&target).is_ok_and(|meta| meta.file_type().is_symlink()) {
        tracing::warn!(
            "`{}` is a symbolic link: leaving it as it is",
            target.display()
        );
        return Ok(());
    }
    let staging = pkg_dir.join(format!(".{module}.new-{}", std::process::id()));
    let retired = pkg_dir.join(format!(".{module}.old-{}", std::process::id()));
    remove_if_present(&staging)?;
    remove_if_present(&retired)?;
    let result = write_module(&staging, module).and_then(|()| {
        if target.exists() {
            fs::rename(&target, &retired)?;
            if let Err(err) = fs::rename(&staging, &target) {
                fs::rename(&retired, &target)?;
                return Err(err);
            }
            remove_if_present(&retired)
        } else {
            fs::rename(&staging, &target)
        }
    });
    if result.is_err() {
        remove_if_present(&staging)?;
    }
    result
}

/// Writes the embedded files of `module`, and its `cue.mod/version.txt`, under `dir`.
fn write_module(dir: &Path, module: &str) -> io::Result<()> {
    let prefix = format!("{module}/");
    for (path, contents) in cuedag_universe::files() {
        let Some(relative) = path.strip_prefix(&prefix) else {
            continue;
        };
        let file = dir.join(relative);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&file, contents)?;
        set_mode(&file, cuedag_universe::file_mode(path))?;
    }
    fs::create_dir_all(dir.join("cue.mod"))?;
    fs::write(
        dir.join("cue.mod/version.txt"),
        cuedag_universe::VERSION.as_bytes(),
    )
}

#[cfg(unix)]
fn set_mode(file: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(file, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

fn remove_if_present(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Marks the vendored modules as generated, for code review tools.
fn write_gitattributes(pkg_dir: &Path) -> io::Result<()> {
    let mut text = String::from("# generated by cuedag project update\n");
    for module in cuedag_universe::MODULES {
        text.push_str(&format!("/{module}/** linguist-generated=true\n"));
    }
    fs::write(pkg_dir.join(".gitattributes"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_quoted_for_cue() {
        assert_eq!(cue_string(""), "\"\"");
        assert_eq!(cue_string("example.com/app"), "\"example.com/app\"");
        assert_eq!(cue_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }

    #[test]
    fn find_project_walks_up_to_cue_mod() {
        let base = std::env::temp_dir().join(format!("cuedag-find-{}", std::process::id()));
        let nested = base.join("a/b");
        fs::create_dir_all(&nested).unwrap();
        assert_eq!(find_project(&nested), None);
        fs::create_dir_all(base.join("cue.mod")).unwrap();
        assert_eq!(find_project(&nested), Some(base.clone()));
        fs::remove_dir_all(&base).unwrap();
    }
}
