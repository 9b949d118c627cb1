"""The one stylesheet of the overview site (`style.css`): plain, readable, printable; states in colour
beside their names, never in colour alone."""

STYLE = """\
:root{--fg:#1a1a1a;--muted:#555;--line:#d0d0d0;--link:#0645ad}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:#fff}
header{background:#263238;padding:.5rem 1rem}
header a{color:#fff;margin-right:1.2rem;text-decoration:none;font-weight:600}
header a:focus,header a:hover{text-decoration:underline}
main{max-width:1400px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.3rem 0;word-break:break-all}
h2{font-size:1.2rem;border-bottom:1px solid var(--line);padding-bottom:.2rem;margin-top:1.6rem}
h3{font-size:1.05rem;word-break:break-all}
a{color:var(--link)}
code{font-size:.9em}
.stamp{color:var(--muted);font-size:.9rem}
.warning{background:#fff3cd;border:1px solid #e0b000;padding:.5rem .8rem;border-radius:4px}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}
caption{text-align:left;color:var(--muted);padding:.2rem 0}
th,td{border:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
thead th{background:#eceff1}
tbody tr:nth-child(even){background:#fafafa}
.state{display:inline-block;padding:0 .4rem;border-radius:3px;border:1px solid #888;font-size:.85rem;white-space:nowrap}
.s-current,.s-passed,.s-finished{background:#c8e6c9}
.s-out-of-date,.s-pending,.s-waived,.s-running{background:#fff3b0}
.s-running{background:#bbdefb}
.s-failed,.s-error{background:#ef9a9a}
.s-blocked{background:#e1bee7}
.s-not-composed,.s-removed,.s-unknown,.s-not-required,.s-not-applicable{background:#eeeeee}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.6rem}
ul.counts a{text-decoration:none}
.filters p{margin:.2rem 0}
.filters a{margin-right:.5rem}
.pager{margin:.5rem 0}
.pager a,.pager strong{margin:0 .2rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;word-break:break-word}
.two{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
article.compose{border:1px solid var(--line);border-radius:4px;padding:.2rem .8rem;margin:.8rem 0}
article.compose:target{outline:3px solid #0645ad}
figure{margin:1rem 0;overflow:auto;border:1px solid var(--line)}
figure object{display:block;max-width:none}
@media (max-width:800px){.two{grid-template-columns:1fr}}
"""
