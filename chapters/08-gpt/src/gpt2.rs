//! (being written: see the chapter 08 issue)
