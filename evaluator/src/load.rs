//! Finding, parsing and compiling packages: modules (`cue.mod`), imports,
//! vendored and embedded packages. All file access goes through [`Loader`].

use std::collections::HashMap;
use std::rc::Rc;

use cuedag_parser::{ast, Diagnostic, LineIndex, Span};

use crate::eval::PkgData;
use crate::ir::{Compiler, Interner, Label, PkgId, Pos, Ref, StructLit};

/// File access for the evaluator (the crate itself does no IO).
pub trait Loader {
    /// The entries of a directory as `(name, is_dir)`, or `None` if `dir` is
    /// not a readable directory.
    fn read_dir(&self, dir: &str) -> Option<Vec<(String, bool)>>;
    /// The contents of a file, or `None` if it cannot be read.
    fn read_file(&self, path: &str) -> Option<String>;
}

/// A loader over an in-memory map of `path → contents` (tests, overlays).
#[derive(Debug, Default, Clone)]
pub struct MemLoader {
    /// Files by path (`/` separated).
    pub files: std::collections::BTreeMap<String, String>,
}

impl MemLoader {
    /// Adds a file.
    pub fn add(&mut self, path: &str, text: &str) -> &mut Self {
        self.files.insert(path.to_string(), text.to_string());
        self
    }
}

impl Loader for MemLoader {
    fn read_dir(&self, dir: &str) -> Option<Vec<(String, bool)>> {
        let prefix = if dir.is_empty() || dir == "." {
            String::new()
        } else {
            format!("{}/", dir.trim_end_matches('/'))
        };
        let mut out: Vec<(String, bool)> = Vec::new();
        for path in self.files.keys() {
            if let Some(rest) = path.strip_prefix(&prefix) {
                match rest.split_once('/') {
                    Some((d, _)) => {
                        if !out.iter().any(|(n, _)| n == d) {
                            out.push((d.to_string(), true));
                        }
                    }
                    None => out.push((rest.to_string(), false)),
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path.trim_start_matches("./")).cloned()
    }
}

/// Options for loading an instance.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Embedded package sources `(path like "universe.dagger.io/go/build.cue", text)`,
    /// used when an import is found nowhere else.
    pub embedded: Vec<(String, String)>,
    /// Extra CUE source texts unified at the root of the main package
    /// (`--with`).
    pub overlays: Vec<String>,
}

/// One source file, for rendering positions.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as shown in messages (`./plan.cue`).
    pub path: String,
    /// The text.
    pub text: String,
    /// Line index.
    pub lines: LineIndex,
}

/// A located position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// File path as shown.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Byte span in the file.
    pub span: Span,
}

/// All source files of a load.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Files by number.
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// Locates a position.
    pub fn locate(&self, pos: Pos) -> Option<Location> {
        let f = self.files.get(pos.file as usize)?;
        let (line, col) = f.lines.line_col(pos.span.start);
        Some(Location {
            file: f.path.clone(),
            line,
            col,
            span: pos.span,
        })
    }
}

/// A problem found while loading (syntax errors, missing imports).
#[derive(Debug, Clone)]
pub struct LoadProblem {
    /// The file it is in, if any.
    pub file: Option<String>,
    /// The diagnostic.
    pub diagnostic: Diagnostic,
    /// Location of the primary span.
    pub location: Option<Location>,
}

pub(crate) struct Compiled {
    pub sources: Sources,
    pub interner: Interner,
    pub pkgs: Vec<PkgData>,
    pub let_counter: u32,
    pub problems: Vec<LoadProblem>,
    pub pkg_paths: Vec<String>,
}

struct LoadState<'a> {
    loader: &'a dyn Loader,
    opts: &'a LoadOptions,
    module_root: Option<String>,
    module_path: String,
    out: Compiled,
    by_path: HashMap<String, Option<PkgId>>,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() || dir == "." {
        name.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_dir(dir: &str) -> Option<String> {
    let trimmed = dir.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        return None;
    }
    match trimmed.rsplit_once('/') {
        Some(("", _)) => Some("/".to_string()),
        Some((p, _)) => Some(p.to_string()),
        None => Some(".".to_string()),
    }
}

/// Finds the module root (the directory holding `cue.mod`) upward from `dir`.
pub fn find_module_root(loader: &dyn Loader, dir: &str) -> Option<String> {
    let mut cur = Some(dir.to_string());
    let mut n = 0;
    while let Some(d) = cur {
        if let Some(entries) = loader.read_dir(&d) {
            if entries.iter().any(|(name, _)| name == "cue.mod") {
                return Some(d);
            }
        }
        cur = parent_dir(&d);
        n += 1;
        if n > 100 {
            break;
        }
    }
    None
}

fn module_path(loader: &dyn Loader, root: &str) -> String {
    let Some(text) = loader.read_file(&join(&join(root, "cue.mod"), "module.cue")) else {
        return String::new();
    };
    let parsed = cuedag_parser::parse(&text);
    for decl in &parsed.file.decls {
        if let ast::Decl::Field(f) = decl {
            let is_module = match &f.label {
                ast::Label::Ident(id) => id.name == "module",
                ast::Label::String(s) => s.as_plain().as_deref() == Some("module"),
                _ => false,
            };
            if is_module {
                if let ast::Expr::String(s) = &f.value {
                    return s.as_plain().unwrap_or_default();
                }
            }
        }
    }
    String::new()
}

/// Loads the package made of `args` (directories or `.cue` files; the
/// current directory `.` when empty).
pub(crate) fn load(loader: &dyn Loader, args: &[String], opts: &LoadOptions) -> Compiled {
    let args: Vec<String> = if args.is_empty() {
        vec![".".to_string()]
    } else {
        args.to_vec()
    };
    let first_dir = if args[0].ends_with(".cue") {
        parent_dir(&args[0]).unwrap_or_else(|| ".".into())
    } else {
        args[0].clone()
    };
    let module_root = find_module_root(loader, &first_dir);
    let module_path = module_root
        .as_deref()
        .map(|r| module_path(loader, r))
        .unwrap_or_default();
    let mut st = LoadState {
        loader,
        opts,
        module_root,
        module_path,
        out: Compiled {
            sources: Sources::default(),
            interner: Interner::default(),
            pkgs: Vec::new(),
            let_counter: 0,
            problems: Vec::new(),
            pkg_paths: Vec::new(),
        },
        by_path: HashMap::new(),
    };
    // Gather the main package's files.
    let mut files: Vec<(String, String)> = Vec::new();
    for arg in &args {
        if arg.ends_with(".cue") {
            match loader.read_file(arg) {
                Some(text) => files.push((display_path(arg), text)),
                None => st.problem(None, format!("cannot read file `{arg}`"), "E0301"),
            }
        } else {
            match loader.read_dir(arg) {
                Some(mut entries) => {
                    entries.sort();
                    for (name, is_dir) in entries {
                        if !is_dir && name.ends_with(".cue") {
                            let path = join(arg, &name);
                            if let Some(text) = loader.read_file(&path) {
                                files.push((display_path(&path), text));
                            }
                        }
                    }
                }
                None => st.problem(None, format!("cannot read directory `{arg}`"), "E0301"),
            }
        }
    }
    for (i, text) in opts.overlays.iter().enumerate() {
        files.push((format!("<overlay {i}>"), text.clone()));
    }
    st.out.pkgs.push(PkgData {
        path: String::new(),
        files: Vec::new(),
        root: None,
    });
    st.out.pkg_paths.push(String::new());
    st.compile_package(0, files, None, true);
    st.out
}

fn display_path(p: &str) -> String {
    if p.starts_with('/') || p.starts_with("./") || p.starts_with("../") || p.starts_with('<') {
        p.to_string()
    } else {
        format!("./{p}")
    }
}

impl LoadState<'_> {
    fn problem(&mut self, file: Option<String>, msg: String, code: &'static str) {
        self.out.problems.push(LoadProblem {
            file,
            diagnostic: Diagnostic {
                code,
                severity: cuedag_parser::Severity::Error,
                message: msg,
                labels: Vec::new(),
                help: None,
            },
            location: None,
        });
    }

    fn compile_package(
        &mut self,
        pkg: PkgId,
        files: Vec<(String, String)>,
        want_name: Option<&str>,
        main: bool,
    ) {
        // Parse.
        let mut parsed = Vec::new();
        for (path, text) in files {
            let parse = cuedag_parser::parse(&text);
            let file_id = self.out.sources.files.len() as u32;
            let lines = LineIndex::new(&text);
            for d in &parse.errors {
                let location = d.primary_span().map(|span| {
                    let (line, col) = lines.line_col(span.start);
                    Location {
                        file: path.clone(),
                        line,
                        col,
                        span,
                    }
                });
                self.out.problems.push(LoadProblem {
                    file: Some(path.clone()),
                    diagnostic: d.clone(),
                    location,
                });
            }
            self.out.sources.files.push(SourceFile {
                path: path.clone(),
                text,
                lines,
            });
            parsed.push((file_id, path, parse.file));
        }
        if main && want_name.is_none() {
            let mut seen: Vec<(String, String)> = Vec::new();
            for (_, path, f) in &parsed {
                if let Some(p) = &f.package {
                    if !seen.iter().any(|(n, _)| n == &p.name.name) {
                        seen.push((p.name.name.clone(), path.clone()));
                    }
                }
            }
            if seen.len() > 1 {
                let msg = format!(
                    "found packages {:?} ({}) and {} ({})",
                    seen[0].0,
                    seen[0].1.trim_start_matches("./"),
                    seen[1].0,
                    seen[1].1.trim_start_matches("./")
                );
                self.problem(None, msg, "E0304");
            }
        }
        // Select files of the package.
        let name = match want_name {
            Some(n) => Some(n.to_string()),
            None => parsed
                .iter()
                .find_map(|(_, _, f)| f.package.as_ref().map(|p| p.name.name.clone())),
        };
        let parsed: Vec<_> = parsed
            .into_iter()
            .filter(|(_, path, f)| {
                path.starts_with("<overlay")
                    || match (&f.package, &name) {
                        (Some(p), Some(n)) => &p.name.name == n || (main && p.name.name == "_"),
                        (None, _) => main,
                        (Some(_), None) => true,
                    }
            })
            .collect();
        // Package scope.
        let mut let_counter = self.out.let_counter;
        let mut names: Vec<(String, Label)> = Vec::new();
        let mut seen_names: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (file_id, _, f) in &parsed {
            let mut c = Compiler::new(&mut self.out.interner, &mut let_counter, pkg, *file_id);
            for n in c.top_names(f) {
                if seen_names.insert(n.0.clone()) {
                    names.push(n);
                }
            }
        }
        self.out.let_counter = let_counter;
        let mut roots: Vec<Rc<StructLit>> = Vec::new();
        for (file_id, path, f) in &parsed {
            let mut imports = HashMap::new();
            for spec in &f.imports {
                let r = self.resolve_import(spec, path, *file_id);
                imports.insert(spec.local_name().to_string(), r);
            }
            let mut let_counter = self.out.let_counter;
            let mut c = Compiler::new(&mut self.out.interner, &mut let_counter, pkg, *file_id);
            c.imports = imports;
            let compiled = c.compile_file(f, &names);
            let errors = std::mem::take(&mut c.errors);
            self.out.let_counter = let_counter;
            for (pos, msg) in errors {
                let location = self.out.sources.locate(pos);
                self.out.problems.push(LoadProblem {
                    file: Some(path.clone()),
                    diagnostic: Diagnostic::error("E0302", msg, pos.span, ""),
                    location,
                });
            }
            roots.push(compiled.root);
        }
        if let Some(p) = self.out.pkgs.get_mut(pkg as usize) {
            p.files = roots;
        }
    }

    fn resolve_import(&mut self, spec: &ast::ImportSpec, path: &str, file_id: u32) -> Ref {
        let import_path = spec.path_without_qualifier().to_string();
        let qualifier = spec.path.rsplit_once(':').map(|(_, q)| q.to_string());
        let first = import_path.split('/').next().unwrap_or("");
        if !first.contains('.') {
            return Ref::BuiltinPkg(Rc::from(import_path.as_str()));
        }
        let key = spec.path.clone();
        if let Some(state) = self.by_path.get(&key) {
            return match state {
                Some(id) => Ref::Import(*id),
                None => {
                    self.import_problem(spec, path, file_id, format!("import cycle: `{key}`"));
                    Ref::Unresolved(Rc::from(key.as_str()))
                }
            };
        }
        self.by_path.insert(key.clone(), None);
        let files = self.find_import_files(&import_path);
        let Some(files) = files else {
            self.import_problem(
                spec,
                path,
                file_id,
                format!("package `{import_path}` not found"),
            );
            self.by_path.remove(&key);
            return Ref::Unresolved(Rc::from(key.as_str()));
        };
        let id = self.out.pkgs.len() as PkgId;
        self.out.pkgs.push(PkgData {
            path: import_path.clone(),
            files: Vec::new(),
            root: None,
        });
        self.out.pkg_paths.push(import_path.clone());
        // The package name: the qualifier, else the last path element (as
        // in CUE, a directory whose files declare another package must be
        // imported as `path:name`).
        let last = import_path.rsplit('/').next().unwrap_or("").to_string();
        let want = qualifier.unwrap_or(last);
        self.compile_package(id, files, Some(&want), false);
        let empty = self
            .out
            .pkgs
            .get(id as usize)
            .is_none_or(|p| p.files.is_empty());
        if empty {
            self.import_problem(
                spec,
                path,
                file_id,
                format!(
                    "import failed: build constraints exclude all CUE files in {import_path}: \
                     no file declares `package {want}`"
                ),
            );
        }
        self.by_path.insert(key, Some(id));
        Ref::Import(id)
    }

    fn import_problem(&mut self, spec: &ast::ImportSpec, path: &str, file_id: u32, msg: String) {
        let location = self.out.sources.locate(Pos {
            file: file_id,
            span: spec.path_span,
        });
        self.out.problems.push(LoadProblem {
            file: Some(path.to_string()),
            diagnostic: Diagnostic::error("E0303", msg, spec.path_span, "imported here")
                .with_help("vendor the package under `cue.mod/pkg/` or fix the import path"),
            location,
        });
    }

    fn read_cue_files(&self, dir: &str) -> Option<Vec<(String, String)>> {
        let mut entries = self.loader.read_dir(dir)?;
        entries.sort();
        let mut out = Vec::new();
        for (name, is_dir) in entries {
            if !is_dir && name.ends_with(".cue") {
                let p = join(dir, &name);
                if let Some(text) = self.loader.read_file(&p) {
                    out.push((display_path(&p), text));
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }

    fn find_import_files(&self, import_path: &str) -> Option<Vec<(String, String)>> {
        if let Some(root) = &self.module_root {
            let cue_mod = join(root, "cue.mod");
            // `cue.mod/pkg`, `gen` and `usr` hold parts of one package (CUE
            // v0.4 unifies them: `usr` adds constraints to generated code).
            let mut vendored = Vec::new();
            for sub in ["pkg", "gen", "usr"] {
                if let Some(files) = self.read_cue_files(&join(&join(&cue_mod, sub), import_path)) {
                    vendored.extend(files);
                }
            }
            if !vendored.is_empty() {
                return Some(vendored);
            }
            if !self.module_path.is_empty() {
                let rest = if import_path == self.module_path {
                    Some("")
                } else {
                    import_path
                        .strip_prefix(&self.module_path)
                        .and_then(|r| r.strip_prefix('/'))
                };
                if let Some(rest) = rest {
                    let dir = if rest.is_empty() {
                        root.clone()
                    } else {
                        join(root, rest)
                    };
                    if let Some(files) = self.read_cue_files(&dir) {
                        // As in CUE v0.4, files of the same package in the
                        // ancestor directories up to the module root belong
                        // to it too (the package clause filters them later);
                        // the outermost come first.
                        let mut all = Vec::new();
                        let mut ancestors = Vec::new();
                        let mut cur = if rest.is_empty() {
                            None
                        } else {
                            parent_dir(&dir)
                        };
                        while let Some(d) = cur {
                            ancestors.push(d.clone());
                            if &d == root {
                                break;
                            }
                            cur = parent_dir(&d);
                        }
                        for d in ancestors.iter().rev() {
                            all.extend(self.read_cue_files(d).unwrap_or_default());
                        }
                        all.extend(files);
                        return Some(all);
                    }
                }
            }
        }
        let prefix = format!("{import_path}/");
        let mut out: Vec<(String, String)> = self
            .opts
            .embedded
            .iter()
            .filter(|(p, _)| {
                p.strip_prefix(&prefix)
                    .map(|rest| !rest.contains('/') && rest.ends_with(".cue"))
                    .unwrap_or(false)
            })
            .map(|(p, t)| (format!("<embedded>/{p}"), t.clone()))
            .collect();
        out.sort();
        if out.is_empty() {
            None
        } else {
            Some(out)
        }
    }
}
