// Package pgramp is ramp.Fleet on PostgreSQL: see doc.go's full text (WIP).
package pgramp
