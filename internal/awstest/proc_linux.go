package awstest

import "syscall"

// sysProcAttr has the kernel kill moto_server should the test binary die
// without stopping it (a panic, a -timeout), so no server is left behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
