// Package enginetest holds the end-to-end tests of the engine: the real
// adapters, built by wire.Service, against a real moto_server, with a
// controllable clock, SDK-level fault injection (smithy middleware on the
// aws.Config) and crash points between the activation steps (decorators of
// the app ports). Everything is in the _test.go files; this file only names
// the package.
//
// The fault matrix these tests produce is kept in docs/fault-matrix.md;
// regenerate it with
//
//	UPDATE_FAULT_MATRIX=1 CI=true go test ./internal/enginetest/ -run TestFaultMatrix
package enginetest
