package id

// Source is the prefix of sync sources (application databases read into contacts).
const Source = "src"
