package unpack

import "syscall"

const syscallNoFollow = syscall.O_NOFOLLOW
