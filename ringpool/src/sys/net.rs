//! Sockets for the runtime: creating, binding, addresses and options. The
//! I/O itself goes through the ring.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A socket address laid out for the kernel.
#[derive(Clone)]
#[repr(C)]
pub(crate) struct RawAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl RawAddr {
    /// Room for any address (for `accept`, `recvmsg`).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
            storage: unsafe { zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub(crate) fn from_std(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: a sockaddr_in fits in a sockaddr_storage, which is
                // aligned for every sockaddr type.
                unsafe {
                    std::ptr::write(&mut raw.storage as *mut _ as *mut libc::sockaddr_in, sin)
                };
                raw.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: a sockaddr_in6 fits in a sockaddr_storage, which is
                // aligned for every sockaddr type.
                unsafe {
                    std::ptr::write(&mut raw.storage as *mut _ as *mut libc::sockaddr_in6, sin6)
                };
                raw.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    pub(crate) fn to_std(&self) -> io::Result<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET if self.len as usize >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // and it is long enough.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if self.len as usize >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: the family says the storage holds a sockaddr_in6,
                // and it is long enough (checked by the match arm).
                let sin6 = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an IPv4 or IPv6 socket address",
            )),
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        &self.storage as *const _ as *const libc::sockaddr
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A new close-on-exec socket for `addr`'s family.
pub(crate) fn socket(addr: &SocketAddr, ty: libc::c_int) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live local int and its exact size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds `fd` to `addr`.
pub(crate) fn bind(fd: &OwnedFd, addr: &SocketAddr, reuse_port: bool) -> io::Result<()> {
    set_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuse_port {
        set_int(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    let raw = RawAddr::from_std(addr);
    // SAFETY: `raw` holds a valid sockaddr of `raw.len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len) }).map(drop)
}

/// A listening TCP socket on `addr`.
pub(crate) fn listen(addr: &SocketAddr, reuse_port: bool, backlog: i32) -> io::Result<OwnedFd> {
    let fd = socket(addr, libc::SOCK_STREAM)?;
    bind(&fd, addr, reuse_port)?;
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(fd)
}

/// The address `fd` is bound to.
pub(crate) fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: `raw` has room for any address, its length in `raw.len`.
    cvt(unsafe { libc::getsockname(fd, &mut raw.storage as *mut _ as *mut _, &mut raw.len) })?;
    raw.to_std()
}

/// The address `fd` is connected to.
pub(crate) fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut raw = RawAddr::empty();
    // SAFETY: `raw` has room for any address, its length in `raw.len`,
    // which the kernel updates.
    cvt(unsafe { libc::getpeername(fd, &mut raw.storage as *mut _ as *mut _, &mut raw.len) })?;
    raw.to_std()
}

/// `TCP_NODELAY`.
pub(crate) fn set_nodelay(fd: RawFd, on: bool) -> io::Result<()> {
    set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on as libc::c_int)
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes no pointers.
    cvt(unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit; returns the new
/// soft limit.
pub(crate) fn raise_nofile() -> io::Result<u64> {
    // SAFETY: getrlimit/setrlimit write/read a live local struct.
    unsafe {
        let mut r: libc::rlimit = zeroed();
        cvt(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r))?;
        r.rlim_cur = r.rlim_max;
        cvt(libc::setrlimit(libc::RLIMIT_NOFILE, &r))?;
        Ok(r.rlim_cur)
    }
}
