//! The hand-over socket file (`runtime.handover_socket`): a unix SOCK_SEQPACKET socket, mode
//! 0600 (only this user, or root, can take the process over), served for as long as the
//! process may hand over.
//!
//! It is bound under a temporary name, given its mode, then renamed over the configured path,
//! so the path never shows a socket with another mode and a new process replaces the file of
//! the one it took over in one step. A file whose socket nobody accepts on (a process that
//! died) is stale and replaced; one a live process serves is refused unless this is the
//! take-over. At exit the file is removed only if it is still ours, never a successor's.
//! Must never remove or replace anything that is not a socket.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use super::HandoverError;

/// A listening hand-over socket and its file.
pub struct Endpoint {
    sock: Socket,
    path: PathBuf,
    /// (device, inode) of the file we created: at exit it is removed only if still these.
    id: (u64, u64),
    /// Taken over: the file is the successor's to replace; never remove it.
    keep_file: bool,
}

/// A connection to the socket at `path` (the process to take over), or why there is none.
pub fn connect(path: &Path) -> Result<Socket, HandoverError> {
    let why = |e: std::io::Error| HandoverError::Connect {
        path: path.to_path_buf(),
        why: match e.kind() {
            ErrorKind::NotFound => {
                "no such socket: no ringlb with this handover_socket is running".into()
            }
            ErrorKind::ConnectionRefused => {
                "nothing accepts on it (a stale socket: the process that made it is gone)".into()
            }
            ErrorKind::PermissionDenied => {
                "permission denied (the socket is mode 0600: run as the same user)".into()
            }
            _ => e.to_string(),
        },
    };
    let sock = Socket::new(Domain::UNIX, Type::SEQPACKET.cloexec(), None).map_err(why)?;
    sock.connect(&SockAddr::unix(path).map_err(why)?)
        .map_err(why)?;
    Ok(sock)
}

impl Endpoint {
    /// At a normal start: creates the socket at `path`, replacing a stale file; refuses if a
    /// live process serves it (that one is to be taken over, not started beside).
    pub fn create(path: &Path) -> Result<Endpoint, HandoverError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(endpoint_err(path, e.to_string())),
            Ok(m) if !m.file_type().is_socket() => {
                return Err(endpoint_err(path, "exists and is not a socket".into()))
            }
            Ok(_) => match connect(path) {
                Ok(_) => {
                    return Err(endpoint_err(
                        path,
                        "a running ringlb serves it; start with --take-over to take its \
                         sockets, or stop it first"
                            .into(),
                    ))
                }
                Err(_) => {
                    tracing::info!(path = %path.display(), "replacing a stale hand-over socket")
                }
            },
        }
        Self::bind(path)
    }

    /// After a take-over: replaces the socket of the process taken over (it is draining and
    /// serves it no more) with ours.
    pub fn replace(path: &Path) -> Result<Endpoint, HandoverError> {
        Self::bind(path)
    }

    fn bind(path: &Path) -> Result<Endpoint, HandoverError> {
        let err = |e: std::io::Error| endpoint_err(path, e.to_string());
        let name = format!(".ringlb-{}.sock", std::process::id());
        let tmp = path.with_file_name(name);
        let tmp = if tmp.as_os_str().len() <= crate::config::MAX_HANDOVER_PATH {
            tmp
        } else {
            path.to_path_buf() // no room for a temporary name: bind in place
        };
        if tmp != path {
            let _ = std::fs::remove_file(&tmp);
        } else if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(path);
        }
        let sock = Socket::new(Domain::UNIX, Type::SEQPACKET.cloexec(), None).map_err(err)?;
        sock.bind(&SockAddr::unix(&tmp).map_err(err)?)
            .map_err(err)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| sock.listen(4))
            .and_then(|()| std::fs::rename(&tmp, path))
            .and_then(|()| std::fs::symlink_metadata(path));
        let meta = match placed {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(err(e));
            }
        };
        // Accept waits at most this long, so the serving thread sees a stop in time.
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(err)?;
        Ok(Endpoint {
            sock,
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            keep_file: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next process connecting, if one does within the accept timeout (200 ms).
    pub fn accept(&self) -> std::io::Result<Option<Socket>> {
        match self.sock.accept() {
            Ok((s, _)) => Ok(Some(s)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Taken over: the successor replaces the file; leave it at exit.
    pub fn keep_file(&mut self) {
        self.keep_file = true;
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if self.keep_file {
            return;
        }
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn endpoint_err(path: &Path, why: String) -> HandoverError {
    HandoverError::Endpoint {
        path: path.to_path_buf(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_file_is_replaced_a_live_one_refused_and_ours_removed_at_exit() {
        let dir = std::env::temp_dir().join(format!("ringlb-endpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.sock");
        let first = Endpoint::create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let live = Endpoint::create(&path).err().unwrap().to_string();
        assert!(live.contains("a running ringlb serves it"), "{live}");
        // Dead without cleaning up (as after SIGKILL): the file stays, nobody accepts.
        let mut dead = first;
        dead.keep_file();
        drop(dead);
        let e = connect(&path).err().unwrap().to_string();
        assert!(e.contains("stale"), "{e}");
        let second = Endpoint::create(&path).unwrap();
        // A successor replaced it: ours is not removed at exit.
        let successor = Endpoint::replace(&path).unwrap();
        drop(second);
        assert!(path.exists(), "the successor's file stays");
        drop(successor);
        assert!(!path.exists(), "removed at exit");
        let missing = connect(&path).err().unwrap().to_string();
        assert!(missing.contains("no such socket"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
