from django.urls import path

from payments.api import views

urlpatterns = [
    path("payments", views.PaymentListCreateApi.as_view(), name="payments"),
    path("payments/<str:payment_id>", views.PaymentDetailApi.as_view(), name="payment-detail"),
    path("payments/<str:payment_id>/capture", views.PaymentCaptureApi.as_view(), name="payment-capture"),
    path("payments/<str:payment_id>/cancel", views.PaymentCancelApi.as_view(), name="payment-cancel"),
    path("payments/<str:payment_id>/refunds", views.RefundCreateApi.as_view(), name="payment-refunds"),
    path("refunds/<str:refund_id>", views.RefundDetailApi.as_view(), name="refund-detail"),
]
