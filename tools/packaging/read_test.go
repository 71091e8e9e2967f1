package main

// Readers of the two package formats from their specifications (ar + tar
// for .deb; lead, headers and a cpio payload for .rpm), so the tests check
// what nfpm wrote without dpkg or rpm.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// pkgFile is one file of a package.
type pkgFile struct {
	mode os.FileMode // permission bits
	size int64
	data []byte // for small files
}

// debPkg is what a .deb holds.
type debPkg struct {
	control map[string]string // the control file's fields
	meta    map[string]string // control.tar.gz's files: postinst, conffiles ...
	files   map[string]pkgFile
}

func readDeb(p string) (debPkg, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return debPkg{}, err
	}
	if !bytes.HasPrefix(b, []byte("!<arch>\n")) {
		return debPkg{}, errors.New("not an ar archive")
	}
	members := map[string][]byte{}
	var order []string
	for off := 8; off+60 <= len(b); {
		h := b[off : off+60]
		name := strings.TrimSuffix(strings.TrimSpace(string(h[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(h[48:58])))
		if err != nil || string(h[58:60]) != "`\n" || off+60+size > len(b) {
			return debPkg{}, fmt.Errorf("bad ar member header at %d", off)
		}
		members[name] = b[off+60 : off+60+size]
		order = append(order, name)
		off += 60 + size + size%2
	}
	if len(order) != 3 || order[0] != "debian-binary" || string(members["debian-binary"]) != "2.0\n" {
		return debPkg{}, fmt.Errorf("ar members %q, want debian-binary 2.0, control, data", order)
	}
	d := debPkg{control: map[string]string{}, meta: map[string]string{}}
	meta, err := readTarGz(members["control.tar.gz"])
	if err != nil {
		return d, fmt.Errorf("control.tar.gz: %w", err)
	}
	for name, f := range meta {
		d.meta[strings.TrimPrefix(name, "/")] = string(f.data)
	}
	for _, line := range strings.Split(d.meta["control"], "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.HasPrefix(line, " ") {
			d.control[k] = v
		}
	}
	data, ok := members["data.tar.gz"]
	if !ok {
		return d, fmt.Errorf("no data.tar.gz in %q", order)
	}
	d.files, err = readTarGz(data)
	return d, err
}

func readTarGz(b []byte) (map[string]pkgFile, error) {
	z, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	out := map[string]pkgFile{}
	tr := tar.NewReader(z)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		f := pkgFile{mode: os.FileMode(h.Mode).Perm(), size: h.Size}
		if h.Size < 64<<10 {
			if f.data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
		out[strings.TrimPrefix(h.Name, ".")] = f
	}
}

// rpmPkg is what an .rpm holds.
type rpmPkg struct {
	strs  map[int32][]string // string, string array and i18n tags
	ints  map[int32][]uint32 // int16 and int32 tags
	files map[string]pkgFile // from the cpio payload
}

// Header tags (rpmtag.h).
const (
	tagName              = 1000
	tagVersion           = 1001
	tagRelease           = 1002
	tagArch              = 1022
	tagOS                = 1021
	tagPostIn            = 1024
	tagPreUn             = 1025
	tagPostUn            = 1026
	tagFileFlags         = 1037
	tagRequireName       = 1049
	tagDirIndexes        = 1116
	tagBaseNames         = 1117
	tagDirNames          = 1118
	tagPayloadFormat     = 1124
	tagPayloadCompressor = 1125
	fileConfig           = 1 << 0
	fileNoReplace        = 1 << 4
)

func readRPM(p string) (rpmPkg, error) {
	f, err := os.Open(p)
	if err != nil {
		return rpmPkg{}, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	lead := make([]byte, 96)
	if _, err := io.ReadFull(r, lead); err != nil {
		return rpmPkg{}, err
	}
	if !bytes.Equal(lead[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return rpmPkg{}, errors.New("no rpm lead")
	}
	// The signature header, padded to 8 bytes, then the header.
	if _, _, err := readHeader(r, true); err != nil {
		return rpmPkg{}, fmt.Errorf("signature header: %w", err)
	}
	pkg := rpmPkg{strs: map[int32][]string{}, ints: map[int32][]uint32{}}
	if pkg.strs, pkg.ints, err = readHeader(r, false); err != nil {
		return pkg, fmt.Errorf("header: %w", err)
	}
	if got := pkg.str(tagPayloadFormat) + "/" + pkg.str(tagPayloadCompressor); got != "cpio/gzip" {
		return pkg, fmt.Errorf("payload %s, want cpio/gzip", got)
	}
	z, err := gzip.NewReader(r)
	if err != nil {
		return pkg, fmt.Errorf("payload: %w", err)
	}
	pkg.files, err = readCpio(z)
	return pkg, err
}

func (p rpmPkg) str(tag int32) string {
	if v := p.strs[tag]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// fileList is the header's file list (dirnames[dirindex] + basename), in order.
func (p rpmPkg) fileList() []string {
	var out []string
	for i, base := range p.strs[tagBaseNames] {
		out = append(out, p.strs[tagDirNames][p.ints[tagDirIndexes][i]]+base)
	}
	return out
}

func readHeader(r io.Reader, pad bool) (map[int32][]string, map[int32][]uint32, error) {
	var h struct {
		Magic    [4]byte
		Reserved [4]byte
		N, Size  uint32
	}
	if err := binary.Read(r, binary.BigEndian, &h); err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(h.Magic[:], []byte{0x8e, 0xad, 0xe8, 0x01}) || h.N > 1<<16 || h.Size > 64<<20 {
		return nil, nil, fmt.Errorf("bad header magic or size %x %d %d", h.Magic, h.N, h.Size)
	}
	type entry struct {
		Tag        int32
		Type       uint32
		Off, Count uint32
	}
	entries := make([]entry, h.N)
	if err := binary.Read(r, binary.BigEndian, entries); err != nil {
		return nil, nil, err
	}
	store := make([]byte, h.Size)
	if _, err := io.ReadFull(r, store); err != nil {
		return nil, nil, err
	}
	if pad {
		if n := (16 + 16*int(h.N) + int(h.Size)) % 8; n != 0 {
			if _, err := io.ReadFull(r, make([]byte, 8-n)); err != nil {
				return nil, nil, err
			}
		}
	}
	strs, ints := map[int32][]string{}, map[int32][]uint32{}
	for _, e := range entries {
		if e.Off > h.Size {
			return nil, nil, fmt.Errorf("tag %d: offset %d past the store", e.Tag, e.Off)
		}
		d := store[e.Off:]
		switch e.Type {
		case 6, 8, 9: // string, string array, i18n string
			for i := uint32(0); i < e.Count; i++ {
				j := bytes.IndexByte(d, 0)
				if j < 0 {
					return nil, nil, fmt.Errorf("tag %d: unterminated string", e.Tag)
				}
				strs[e.Tag] = append(strs[e.Tag], string(d[:j]))
				d = d[j+1:]
			}
		case 3: // int16
			for i := uint32(0); i < e.Count && len(d) >= 2; i++ {
				ints[e.Tag] = append(ints[e.Tag], uint32(binary.BigEndian.Uint16(d)))
				d = d[2:]
			}
		case 4: // int32
			for i := uint32(0); i < e.Count && len(d) >= 4; i++ {
				ints[e.Tag] = append(ints[e.Tag], binary.BigEndian.Uint32(d))
				d = d[4:]
			}
		}
	}
	return strs, ints, nil
}

// readCpio reads a "newc" cpio archive's regular files.
func readCpio(r io.Reader) (map[string]pkgFile, error) {
	out := map[string]pkgFile{}
	br := bufio.NewReader(r)
	var off int64
	skip := func(n int64) error {
		_, err := io.CopyN(io.Discard, br, n)
		off += n
		return err
	}
	for {
		h := make([]byte, 110)
		if _, err := io.ReadFull(br, h); err != nil {
			return nil, fmt.Errorf("cpio header: %w", err)
		}
		off += 110
		if string(h[:6]) != "070701" {
			return nil, fmt.Errorf("cpio magic %q", h[:6])
		}
		field := func(i int) int64 {
			v, _ := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
			return int64(v)
		}
		mode, size, nameSize := field(1), field(6), field(11)
		name := make([]byte, nameSize)
		if _, err := io.ReadFull(br, name); err != nil {
			return nil, err
		}
		off += nameSize
		if err := skip((4 - off%4) % 4); err != nil {
			return nil, err
		}
		n := strings.TrimPrefix(string(bytes.TrimRight(name, "\x00")), ".")
		if n == "TRAILER!!!" {
			return out, nil
		}
		f := pkgFile{mode: os.FileMode(mode).Perm(), size: size}
		if mode&0o170000 == 0o100000 && size < 64<<10 {
			f.data = make([]byte, size)
			if _, err := io.ReadFull(br, f.data); err != nil {
				return nil, err
			}
			off += size
		} else if err := skip(size); err != nil {
			return nil, err
		}
		if mode&0o170000 == 0o100000 {
			out[n] = f
		}
		if err := skip((4 - off%4) % 4); err != nil {
			return nil, err
		}
	}
}
