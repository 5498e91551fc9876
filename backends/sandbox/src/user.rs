//! Resolving `user` (`name`, `uid`, `name:group`, `uid:gid`) through the
//! image's `/etc/passwd` and `/etc/group`, as runc does.

use crate::error::ExecError;
use crate::layers::Stack;

/// The identity an exec runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: the groups of `/etc/group` listing the user.
    pub groups: Vec<u32>,
    /// The home directory from the passwd entry, `/` when there is none.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let name = (*fields.first()?).to_owned();
            let uid = fields.get(2)?.trim().parse().ok()?;
            let gid = fields.get(3)?.trim().parse().ok()?;
            let home = fields.get(5).map(|h| (*h).to_owned()).unwrap_or_default();
            Some(PasswdEntry {
                name,
                uid,
                gid,
                home,
            })
        })
        .collect()
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let name = (*fields.first()?).to_owned();
            let gid = fields.get(2)?.trim().parse().ok()?;
            let members = fields
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|m| !m.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some(GroupEntry { name, gid, members })
        })
        .collect()
}

fn read_text(stack: &Stack<'_>, path: &str) -> Result<String, ExecError> {
    Ok(stack
        .read_file(path)?
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default())
}

/// Resolves `spec` against the layer stack.
pub(crate) fn resolve_user(stack: &Stack<'_>, spec: &str) -> Result<Identity, ExecError> {
    let spec = spec.trim();
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() {
        "root"
    } else {
        user_part
    };
    let passwd = parse_passwd(&read_text(stack, "/etc/passwd")?);
    let (uid, mut gid, home, name) = match user_part.parse::<u32>() {
        Ok(uid) => match passwd.iter().find(|e| e.uid == uid) {
            Some(entry) => (uid, entry.gid, entry.home.clone(), Some(entry.name.clone())),
            None => (uid, 0, String::new(), None),
        },
        Err(_) => match passwd.iter().find(|e| e.name == user_part) {
            Some(entry) => (
                entry.uid,
                entry.gid,
                entry.home.clone(),
                Some(entry.name.clone()),
            ),
            None if user_part == "root" => (0, 0, "/root".to_owned(), Some("root".to_owned())),
            None => {
                return Err(ExecError::UnknownUser {
                    user: user_part.to_owned(),
                })
            }
        },
    };
    let groups = parse_groups(&read_text(stack, "/etc/group")?);
    if let Some(group) = group_part.filter(|g| !g.is_empty()) {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match groups.iter().find(|entry| entry.name == group) {
                Some(entry) => entry.gid,
                None if group == "root" => 0,
                None => {
                    return Err(ExecError::UnknownGroup {
                        group: group.to_owned(),
                    })
                }
            },
        };
    }
    let home = if home.is_empty() {
        "/".to_owned()
    } else {
        home
    };
    let mut supplementary = vec![gid];
    if let Some(name) = &name {
        for entry in &groups {
            if entry.members.iter().any(|m| m == name) && !supplementary.contains(&entry.gid) {
                supplementary.push(entry.gid);
            }
        }
    }
    Ok(Identity {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_parsing_skips_bad_lines() {
        let entries = parse_passwd(
            "root:x:0:0:root:/root:/bin/sh\nbad\napp:x:1000:1001::/home/app:/bin/sh\n",
        );
        let names: Vec<_> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.uid, e.gid))
            .collect();
        assert_eq!(names, vec![("root", 0, 0), ("app", 1000, 1001)]);
    }

    #[test]
    fn group_parsing() {
        let groups = parse_groups("root:x:0:\nstaff:x:50:app, web\n");
        let summary: Vec<_> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.gid, g.members.join("+")))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("root", 0, String::new()),
                ("staff", 50, "app+web".to_owned())
            ]
        );
    }
}
