package crypt

// SealKeyFileFrom is sealKeyFile, for known-answer tests.
var SealKeyFileFrom = sealKeyFile
