package iamgrant_test

import (
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/iamgrant"
)

// Every provider in the map is an app.Provider.
var _ app.Provider = iamgrant.Provider(nil)
