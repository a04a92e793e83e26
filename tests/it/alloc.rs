//! The allocator the binary installs (`charrnn::parallel::LineAligned`, which
//! this test binary installs too: see main.rs): blocks of a cache line or more
//! start on a line, also after growing past that size.

use charrnn::parallel::alloc::LINE;

#[test]
fn blocks_of_a_line_or_more_start_on_a_line() {
    for n in [8usize, 9, 100, 513, 1 << 17] {
        let v = vec![0.0f64; n];
        assert_eq!(v.as_ptr() as usize % LINE, 0, "{n} values");
    }
    // growing past the threshold moves a small block onto a line, and keeps it
    let mut v: Vec<u8> = vec![7; 10];
    v.resize(300, 1);
    assert_eq!(v.as_ptr() as usize % LINE, 0);
    assert_eq!((v[9], v[10], v.len()), (7, 1, 300));
    v.truncate(20);
    v.shrink_to_fit();
    assert_eq!(&v[..], &[[7u8; 10], [1; 10]].concat()[..]);
}
