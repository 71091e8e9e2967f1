package unpack

import (
	"bytes"
	"io"
)

// XZDictionary reads the start of an archive and, when it is xz, returns
// the LZMA2 dictionary size its first block declares: about the memory the
// decoder holds while unpacking it. ok is false for anything else (gzip,
// plain tar, a header it cannot read). The xz tool writes every block of a
// stream with the same settings.
func XZDictionary(r io.Reader) (size int64, ok bool) {
	var b [12 + 1024]byte
	n, _ := io.ReadFull(r, b[:])
	h := b[:n]
	// Stream header (12 bytes), then the first block header: its size,
	// flags, optional sizes, then the filter flags.
	if len(h) < 14 || !bytes.HasPrefix(h, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}) || h[12] == 0 {
		return 0, false
	}
	end := 12 + (int(h[12])+1)*4
	if end > len(h) {
		return 0, false
	}
	flags, p := h[13], h[14:end]
	varint := func() (uint64, bool) {
		var v uint64
		for i := 0; i < 9 && i < len(p); i++ {
			v |= uint64(p[i]&0x7f) << (7 * i)
			if p[i]&0x80 == 0 {
				p = p[i+1:]
				return v, true
			}
		}
		return 0, false
	}
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			if _, ok := varint(); !ok {
				return 0, false
			}
		}
	}
	for range int(flags&3) + 1 {
		id, ok1 := varint()
		propsLen, ok2 := varint()
		if !ok1 || !ok2 || propsLen > uint64(len(p)) {
			return 0, false
		}
		props := p[:propsLen]
		p = p[propsLen:]
		if id != 0x21 { // not LZMA2 (a BCJ filter before it, say)
			continue
		}
		if len(props) != 1 || props[0] > 40 {
			return 0, false
		}
		if props[0] == 40 {
			return 1<<32 - 1, true
		}
		return int64(2|props[0]&1) << (props[0]/2 + 11), true
	}
	return 0, false
}
