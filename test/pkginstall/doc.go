// Package pkginstall (tests only) installs the manager's .deb as an
// operator would and starts the manager the way its systemd unit says, on
// a test host, without touching this machine: dpkg runs in a chroot onto an
// overlay of the machine's root file system in a mount namespace of its own,
// and everything it writes goes to a tmpfs that vanishes with it.
package pkginstall
