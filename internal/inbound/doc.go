// Package inbound runs postie's SMTP servers: submission, where applications hand over mail
// with an API key as the password and get their 250 only once the message is committed through
// package message, and bounce/complaint intake, where the DSNs and feedback reports sent back to
// the bounce domain become recipient states, suppressions and webhooks.
package inbound
