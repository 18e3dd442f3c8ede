package id

// Segment is the prefix of saved segments (package audience).
const Segment = "seg"
