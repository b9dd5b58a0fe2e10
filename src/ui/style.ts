/** The dashboard's one stylesheet, served from the package at /static/plinth.css (no CDN: works air-gapped). */
export const CSS = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9}
a{color:#0b5cad}a:focus-visible,button:focus-visible,input:focus-visible,main:focus-visible{outline:3px solid #f0a202;outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5em 1em;z-index:10}.skip:focus{left:.5em}
header{background:#14213d;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;align-items:center;gap:.5em 1em}
header nav{display:flex;flex-wrap:wrap;align-items:center;gap:.25em 1em}
header a{color:#fff;text-decoration:none;padding:.2em .1em}header a[aria-current=page]{border-bottom:3px solid #f0a202}
.brand{font-weight:700;font-size:1.1em}.user{margin-left:auto;opacity:.8}
.search{display:flex;gap:.3em;align-items:center}.search label{font-size:.85em}
main{padding:1em;max-width:1400px;margin:0 auto}h1{font-size:1.4em;word-break:break-all}h2{font-size:1.15em;margin-top:1.5em}
.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(10em,1fr));gap:.75em}
.stat{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:.6em .8em}.stat .n{display:block;font-size:1.5em;font-weight:600}.stat .l{color:#4a5360;font-size:.9em}
.scroll{overflow-x:auto}table{border-collapse:collapse;background:#fff;width:100%;font-size:.92em}
caption{text-align:left;font-weight:600;padding:.3em 0}th,td{border-bottom:1px solid #e3e6ea;padding:.35em .5em;text-align:left;vertical-align:top}
thead th{background:#eef1f4;white-space:nowrap}td small{color:#4a5360}
code{font-size:.9em;word-break:break-all}.muted{color:#6a7380}
.badge{display:inline-block;border-radius:3px;padding:0 .35em;font-size:.8em;background:#e3e6ea}
.badge.ok,.badge.signed,.s-approved{background:#d5f0dc}.badge.warn,.s-superseded{background:#fde9c3}.badge.bad,.s-deprecated{background:#f8d0d0}
.sev{font-weight:600}.sev-critical{color:#a4000f}.sev-high{color:#b54700}.sev-medium{color:#7a5d00}.sev-low{color:#2d5d8a}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}.facts dt{font-weight:600;color:#4a5360}.facts dd{margin:0;word-break:break-word}
.filters{display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:flex-end;background:#fff;border:1px solid #d8dde3;padding:.5em .8em;border-radius:6px}
.filters p{margin:.2em 0;display:flex;flex-direction:column}.filters label{font-size:.85em;color:#4a5360}
.pager{margin:.6em 0;display:flex;gap:1em;flex-wrap:wrap}.error{background:#f8d0d0;padding:.6em 1em;border-radius:6px}
.trend{margin:.5em 0;background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:.4em .6em}.trend svg{display:block;width:100%;max-height:160px}.trend figcaption{font-size:.85em;color:#4a5360}
footer{color:#6a7380;font-size:.85em;padding:1em;text-align:center}
@media (max-width:640px){main{padding:.5em}.facts{grid-template-columns:1fr}.facts dd{margin-bottom:.4em}header{padding:.5em}}
`;
