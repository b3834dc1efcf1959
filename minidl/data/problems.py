r"""Objective functions for the optimization chapters, with exact gradients and Hessians.

Each factory returns a :class:`Problem` :math:`L: \mathbb{R}^d \to \mathbb{R}` that knows its
``value``, ``grad`` and ``hessian`` in closed form, and its ``minimizer`` and ``minimum``:

- :func:`quadratic` / :class:`Quadratic`: :math:`L(w) = \tfrac12 w^\top A w + b^\top w + c`, the
  model problem of chapters 2-5 (eigenvalues, condition number, optimal learning rates). With
  eigenvalues of both signs, e.g. ``quadratic([1.0, -1.0])``, it is the plain saddle.
  :func:`rotated_quadratic` is the 2-D one with eigenvalues 1 and :math:`\kappa`, turned.
- :func:`rosenbrock`: the curved banana valley (Rosenbrock 1960).
- :func:`quartic`: smooth and convex but not strongly convex, so gradient descent is sublinear.
- :func:`double_well`: non-convex, two minima and a saddle, an indefinite Hessian near the saddle.
- :func:`monkey_saddle`: a degenerate saddle (gradient and Hessian vanish), unbounded below.

``value`` and ``grad`` are vectorised over leading axes: a point of shape ``(d,)`` gives a float
and a gradient of shape ``(d,)``; a stack of points of shape ``(..., d)`` gives values of shape
``(...)`` and gradients of shape ``(..., d)``. :meth:`Problem.value_grid` evaluates a 2-D problem
on a ``numpy.meshgrid`` for contour plots. ``hessian`` takes one point of shape ``(d,)``.

References:
    J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006.
    H. H. Rosenbrock, "An automatic method for finding the greatest or least value of a
    function", *The Computer Journal* 3(3):175-184, 1960.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from minidl._checks import positive_int

Function = Callable[[np.ndarray], np.ndarray]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class Problem:
    """A twice-differentiable objective with its exact derivatives.

    Attributes:
        name: used in error messages and plot labels.
        dim: the number :math:`d` of coordinates of a point.
        minimizer: a global minimizer of shape ``(d,)`` (read-only), or ``None`` when the
            function is unbounded below.
        minimum: :math:`L(w^*)`, or ``-inf`` when the function is unbounded below.
    """

    def __init__(
        self,
        name: str,
        dim: int,
        value: Function,
        grad: Function,
        hessian: Function,
        *,
        minimizer: ArrayLike | None,
        minimum: float,
    ):
        self.name = name
        self.dim = dim
        self._value = value
        self._grad = grad
        self._hessian = hessian
        self.minimizer = (
            None if minimizer is None else _read_only(np.array(minimizer, dtype=np.float64))
        )
        self.minimum = float(minimum)

    def value(self, w: ArrayLike) -> float | np.ndarray:
        """:math:`L(w)`: a float for a point ``(d,)``, an array ``(...)`` for points ``(...,d)``."""
        w = self._points(w)
        out = self._value(w)
        return float(out) if w.ndim == 1 else out

    def grad(self, w: ArrayLike) -> np.ndarray:
        r""":math:`\nabla L(w)`, of the same shape as ``w``: ``(d,)`` or ``(..., d)``."""
        return self._grad(self._points(w))

    def hessian(self, w: ArrayLike) -> np.ndarray:
        r""":math:`\nabla^2 L(w)` of shape ``(d, d)`` at one point of shape ``(d,)``."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.dim,):
            raise ValueError(
                f"{self.name}.hessian: expected a point of shape ({self.dim},), got {w.shape}"
            )
        return self._hessian(w)

    def value_grid(self, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
        """Values at the grid ``X, Y = np.meshgrid(xs, ys)``, for contour plots of 2-D problems."""
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        if self.dim != 2:
            raise ValueError(f"{self.name}.value_grid: needs a 2-D problem, got dim={self.dim}")
        if X.shape != Y.shape:
            raise ValueError(
                f"{self.name}.value_grid: X and Y must have the same shape, "
                f"got {X.shape} and {Y.shape}"
            )
        return np.asarray(self.value(np.stack([X, Y], axis=-1)))

    def _points(self, w: ArrayLike) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        if w.ndim == 0 or w.shape[-1] != self.dim:
            raise ValueError(
                f"{self.name}: expected a point of shape ({self.dim},) or points of shape "
                f"(..., {self.dim}), got {w.shape}"
            )
        return w

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, dim={self.dim})"


class Quadratic(Problem):
    r"""The quadratic :math:`L(w) = \tfrac12 w^\top A w + b^\top w + c` with symmetric :math:`A`.

    .. math::
        \nabla L(w) = A w + b, \qquad \nabla^2 L(w) = A, \qquad
        w^* = -A^{-1} b, \qquad L(w^*) = c - \tfrac12 b^\top A^{-1} b.

    Gradient descent :math:`w_{t+1} = w_t - \eta (A w_t + b)` contracts the error along the
    eigenvector :math:`q_i` by :math:`1 - \eta\lambda_i`, so (Nocedal & Wright, Sec. 3.3):

    - ``optimal_lrs`` :math:`\eta_{i,\text{opt}} = 1/\lambda_i` reaches the minimum along
      :math:`q_i` in one step; gradient descent converges iff :math:`\eta < 2/\lambda_\max`
      (``max_stable_lr``), i.e. :math:`\eta < 2\min_i \eta_{i,\text{opt}}`;
    - ``optimal_lr`` :math:`\eta_\text{opt} = 2/(\lambda_\min + \lambda_\max)` minimizes the
      slowest contraction, which is then :math:`(\kappa - 1)/(\kappa + 1)` with the
      ``condition_number`` :math:`\kappa = \lambda_\max/\lambda_\min`.

    ``eigenvalues`` are sorted ascending and ``eigenvectors[:, i]`` belongs to ``eigenvalues[i]``.
    When :math:`A` is positive semidefinite and singular the minimizer is not unique:
    ``minimizer`` is the one of minimum norm if :math:`b` lies in the range of :math:`A`, else the
    function is unbounded below (``minimizer=None``, ``minimum=-inf``), as it is whenever
    :math:`A` has a negative eigenvalue.
    """

    def __init__(
        self, A: ArrayLike, b: ArrayLike | None = None, c: float = 0.0, *, name: str = "quadratic"
    ):
        A = np.array(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"Quadratic: A must be a square matrix of shape (d, d), got {A.shape}")
        if not np.all(np.isfinite(A)):
            raise ValueError("Quadratic: A must be finite")
        asymmetry = np.abs(A - A.T).max()
        if asymmetry > 1e-12 * max(np.abs(A).max(), 1.0):
            raise ValueError(f"Quadratic: A must be symmetric, got max |A - A^T| = {asymmetry:.3g}")
        A = (A + A.T) / 2
        dim = A.shape[0]
        b = np.zeros(dim) if b is None else np.array(b, dtype=np.float64)
        if b.shape != (dim,):
            raise ValueError(
                f"Quadratic: b must have shape ({dim},) to match A {A.shape}, got {b.shape}"
            )
        c = float(c)

        eigenvalues, eigenvectors = np.linalg.eigh(A)
        # Eigenvalues within rounding of zero count as zero.
        tol = dim * np.finfo(np.float64).eps * np.abs(eigenvalues).max()
        self.is_positive_definite = bool(eigenvalues[0] > tol)
        if self.is_positive_definite:
            minimizer = np.linalg.solve(A, -b)
        elif eigenvalues[0] >= -tol:
            minimizer = np.linalg.lstsq(A, -b)[0]
            if not np.allclose(A @ minimizer, -b, rtol=0.0, atol=1e-9 * max(np.abs(b).max(), 1.0)):
                minimizer = None
        else:
            minimizer = None
        minimum = -np.inf if minimizer is None else c + 0.5 * b @ minimizer

        self.A, self.b, self.c = _read_only(A), _read_only(b), c
        self.eigenvalues = _read_only(eigenvalues)
        self.eigenvectors = _read_only(eigenvectors)
        super().__init__(
            name,
            dim,
            value=lambda w: 0.5 * np.einsum("...i,ij,...j->...", w, A, w) + w @ b + c,
            grad=lambda w: w @ A + b,
            hessian=lambda w: A.copy(),
            minimizer=minimizer,
            minimum=minimum,
        )

    @property
    def condition_number(self) -> float:
        r""":math:`\kappa = \lambda_\max / \lambda_\min`, ``inf`` unless A is positive definite."""
        if not self.is_positive_definite:
            return np.inf
        return float(self.eigenvalues[-1] / self.eigenvalues[0])

    @property
    def optimal_lr(self) -> float:
        r""":math:`\eta_\text{opt} = 2/(\lambda_\min + \lambda_\max)`, the best single rate."""
        self._require_positive_definite("optimal_lr")
        return float(2.0 / (self.eigenvalues[0] + self.eigenvalues[-1]))

    @property
    def optimal_lrs(self) -> np.ndarray:
        r""":math:`\eta_{i,\text{opt}} = 1/\lambda_i`, one per entry of ``eigenvalues``."""
        self._require_positive_definite("optimal_lrs")
        return 1.0 / self.eigenvalues

    @property
    def max_stable_lr(self) -> float:
        r""":math:`2/\lambda_\max`: gradient descent converges iff :math:`0 < \eta <` this."""
        self._require_positive_definite("max_stable_lr")
        return float(2.0 / self.eigenvalues[-1])

    def _require_positive_definite(self, what: str) -> None:
        if not self.is_positive_definite:
            raise ValueError(
                f"{self.name}.{what}: needs a positive definite A, got smallest eigenvalue "
                f"{self.eigenvalues[0]:.6g}"
            )


def quadratic(
    eigenvalues: ArrayLike,
    *,
    angle: float = 0.0,
    rng: np.random.Generator | None = None,
    b: ArrayLike | None = None,
) -> Quadratic:
    r"""The :class:`Quadratic` with :math:`A = Q \operatorname{diag}(\lambda) Q^\top`.

    :math:`A` has exactly the requested ``eigenvalues`` (to rounding error, about
    :math:`10^{-16}\lambda_\max`); ``Quadratic.eigenvalues`` lists them sorted ascending.
    The eigenvectors, the columns of :math:`Q`, are chosen by one of:

    - ``angle`` (2-D only): :math:`Q` is the rotation by ``angle`` radians, so the eigenvector of
      ``eigenvalues[0]`` is :math:`(\cos\theta, \sin\theta)`;
    - ``rng`` (any dimension): random eigenvectors, uniform (Haar) over the orthogonal group:
      :math:`Q` from the QR factorization of a standard Gaussian matrix. Mezzadri (2007, "How to
      generate random matrices from the classical compact groups") flips the signs of the
      columns of :math:`Q` to make :math:`Q` itself Haar; :math:`A` does not depend on these
      signs, so no flip is needed;
    - neither: :math:`Q = I`, the axis-aligned :math:`A = \operatorname{diag}(\lambda)`.

    ``b`` (default 0) moves the minimizer to :math:`-A^{-1}b`.
    """
    eigenvalues = np.array(eigenvalues, dtype=np.float64)
    if eigenvalues.ndim != 1 or eigenvalues.size == 0:
        raise ValueError(
            f"quadratic: eigenvalues must be a non-empty 1-D array, got shape {eigenvalues.shape}"
        )
    dim = eigenvalues.size
    if angle != 0.0 and dim != 2:
        raise ValueError(f"quadratic: angle rotates a 2-D quadratic, got {dim} eigenvalues")
    if angle != 0.0 and rng is not None:
        raise ValueError(
            "quadratic: give angle (a 2-D rotation) or rng (a random rotation), not both"
        )
    if rng is not None:
        Q = np.linalg.qr(rng.standard_normal((dim, dim))).Q
    elif dim == 2:
        cos, sin = np.cos(angle), np.sin(angle)
        Q = np.array([[cos, -sin], [sin, cos]])
    else:
        Q = np.eye(dim)
    A = (Q * eigenvalues) @ Q.T
    return Quadratic((A + A.T) / 2, b)


def rotated_quadratic(kappa: float, angle: float = np.pi / 6) -> Quadratic:
    r"""The 2-D quadratic :math:`\tfrac12 w^\top A w` with eigenvalues 1 and :math:`\kappa`,
    its eigenvectors turned by ``angle`` radians (30° by default) from the coordinate axes.

    The condition number is :math:`\kappa` and the minimizer the origin; with ``angle=0`` the
    valley runs along :math:`w_1`, so a per-coordinate method sees each curvature alone.
    """
    return quadratic([1.0, kappa], angle=angle)


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Problem:
    r"""Rosenbrock's function :math:`L(x, y) = (a - x)^2 + b\,(y - x^2)^2` (Rosenbrock 1960).

    .. math::
        \nabla L = \begin{pmatrix} -2(a - x) - 4 b x (y - x^2) \\ 2 b (y - x^2) \end{pmatrix},
        \qquad
        \nabla^2 L = \begin{pmatrix} 2 - 4 b (y - x^2) + 8 b x^2 & -4 b x \\
                                    -4 b x & 2 b \end{pmatrix}.

    The unique minimizer :math:`(a, a^2)` with minimum 0 lies at the end of a long, curved, flat
    valley :math:`y = x^2`; with the classic :math:`a = 1, b = 100` the Hessian at the minimizer has
    condition number about 2500 (Nocedal & Wright, Ch. 2 and 6).
    """
    a, b = float(a), float(b)
    if not b > 0:
        raise ValueError(f"rosenbrock: b must be positive, got {b}")

    def value(w: np.ndarray) -> np.ndarray:
        x, y = w[..., 0], w[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad(w: np.ndarray) -> np.ndarray:
        x, y = w[..., 0], w[..., 1]
        valley = y - x**2
        return np.stack([-2 * (a - x) - 4 * b * x * valley, 2 * b * valley], axis=-1)

    def hessian(w: np.ndarray) -> np.ndarray:
        x, y = w
        return np.array([[2 - 4 * b * (y - x**2) + 8 * b * x**2, -4 * b * x], [-4 * b * x, 2 * b]])

    return Problem("rosenbrock", 2, value, grad, hessian, minimizer=[a, a * a], minimum=0.0)


def quartic(dim: int = 2) -> Problem:
    r""":math:`L(w) = \sum_i w_i^4`: smooth and convex, but not strongly convex.

    .. math::
        \nabla L = 4 w^3, \qquad \nabla^2 L = \operatorname{diag}(12 w^2), \qquad w^* = 0.

    The Hessian vanishes at the minimizer, so no quadratic lower bound holds there and gradient
    descent loses its linear rate: with a fixed step :math:`\eta` each coordinate follows
    :math:`w_{k+1} = w_k - 4\eta w_k^3`, so :math:`w_k^2 \approx 1/(8\eta k)` and
    :math:`L(w_k) = \Theta(1/k^2)` per coordinate -- sublinear, within the :math:`O(1/k)` bound
    for smooth convex functions, against the geometric decay on a strongly convex quadratic.
    The curvature :math:`12 w^2` grows without bound, so the function is smooth only on bounded
    sets: a fixed step is stable only from starting points with :math:`|w_i| < 1/\sqrt{2\eta}`.
    """
    dim = positive_int("quartic", "dim", dim)
    return Problem(
        "quartic",
        dim,
        value=lambda w: np.sum(w**4, axis=-1),
        grad=lambda w: 4 * w**3,
        hessian=lambda w: np.diag(12 * w**2),
        minimizer=np.zeros(dim),
        minimum=0.0,
    )


def double_well() -> Problem:
    r""":math:`L(x, y) = \tfrac14 x^4 - \tfrac12 x^2 + \tfrac12 y^2`: two minima, a saddle between.

    .. math::
        \nabla L = \begin{pmatrix} x^3 - x \\ y \end{pmatrix}, \qquad
        \nabla^2 L = \begin{pmatrix} 3x^2 - 1 & 0 \\ 0 & 1 \end{pmatrix}.

    The minima are :math:`(\pm 1, 0)` with :math:`L = -\tfrac14` (``minimizer`` is
    :math:`(1, 0)`), the saddle is the origin. The Hessian is indefinite in the strip
    :math:`|x| < 1/\sqrt{3}`: there the Newton step :math:`-H^{-1}\nabla L` points towards the
    saddle along :math:`x`, uphill, while gradient descent (or a damped Newton step) moves away
    from it (Nocedal & Wright, Sec. 3.4).
    """
    return Problem(
        "double_well",
        2,
        value=lambda w: w[..., 0] ** 4 / 4 - w[..., 0] ** 2 / 2 + w[..., 1] ** 2 / 2,
        grad=lambda w: np.stack([w[..., 0] ** 3 - w[..., 0], w[..., 1]], axis=-1),
        hessian=lambda w: np.diag([3 * w[0] ** 2 - 1, 1.0]),
        minimizer=[1.0, 0.0],
        minimum=-0.25,
    )


def monkey_saddle() -> Problem:
    r"""The monkey saddle :math:`L(x, y) = x^3 - 3 x y^2`, a degenerate saddle at the origin.

    .. math::
        \nabla L = \begin{pmatrix} 3x^2 - 3y^2 \\ -6xy \end{pmatrix}, \qquad
        \nabla^2 L = \begin{pmatrix} 6x & -6y \\ -6y & -6x \end{pmatrix}.

    At the origin gradient and Hessian both vanish, so neither first- nor second-order
    information reveals the three descending valleys. Unbounded below: ``minimizer`` is ``None``
    and ``minimum`` is ``-inf``.
    """
    return Problem(
        "monkey_saddle",
        2,
        value=lambda w: w[..., 0] ** 3 - 3 * w[..., 0] * w[..., 1] ** 2,
        grad=lambda w: np.stack(
            [3 * w[..., 0] ** 2 - 3 * w[..., 1] ** 2, -6 * w[..., 0] * w[..., 1]], axis=-1
        ),
        hessian=lambda w: np.array([[6 * w[0], -6 * w[1]], [-6 * w[1], -6 * w[0]]]),
        minimizer=None,
        minimum=-np.inf,
    )
