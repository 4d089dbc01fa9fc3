// Package layering holds one test: the rules of ../shared/ARCHITECTURE.md that
// keep the core pure (which package may depend on which, and which packages
// never read the wall clock), checked for every core package in one table.
package layering
